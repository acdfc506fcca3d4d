"""Thay đổi, cải chính, bổ sung thông tin hộ tịch, xác định lại dân tộc (1.004859) through its paths."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "civil_status_change_correction"
FORM = {
    "change_kind": "correction",
    "subject_full_name": "Nguyễn Minh An",
    "subject_birth_date": "2012-03-15",
    "subject_age": 14,
    "field_changed": "Ngày sinh trong Giấy khai sinh",
    "current_value": "15/03/2012",
    "requested_value": "13/05/2012",
    "reason": "Ghi sai ngày sinh so với Giấy chứng sinh",
}
# Thu 19/11/2026 10:00: 3 working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "register_entry": "Số 12, quyển 01/2026"}
APPROVE = {"decision": "approve"}
FEE = 10000  # Hà Tĩnh's rate (NQ 253/2020/NQ-HĐND), the catalogue's example


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def test_due_date_is_three_working_days_over_weekend_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3) → Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]


def test_happy_path_at_the_counter(case):
    case.submit(form=FORM, at=THURSDAY)
    assert services.fee_due(case.dossier.terms["fee"], case.dossier.form) == FEE
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": case.dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.task("appraise").role == "justice"
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve")
    assert set(err.value.fields) == {"register_entry"}  # the change is written in the book first
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": case.dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=FEE, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.finished


def test_online_payment_before_the_result_is_released(case):
    # full online (toàn trình): the provincial fee is paid online before the result is released
    case.submit(form=FORM, at=THURSDAY, channel="online")
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.status == "payment_requested"
    assert case.dossier.status_code == 6
    with pytest.raises(services.InvalidDataError) as err:
        services.record_payment(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, amount=20000,
                                reference="PAY-2")
    assert err.value.fields == {"amount": [f"must be {FEE}"]}
    services.record_payment(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, amount=FEE,
                            reference="PAY-2")
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


@pytest.mark.parametrize(
    ("change", "consent_needed"),
    [
        # Civil Code 2015 art. 28(2): a name change for a person aged 9 or more needs their consent.
        ({"change_kind": "change", "subject_age": 9}, True),
        ({"change_kind": "change", "subject_age": 8}, False),
        # Civil Code 2015 art. 29(3): ethnicity re-determination from age 15 needs their consent.
        ({"change_kind": "ethnicity", "subject_age": 15}, True),
        ({"change_kind": "ethnicity", "subject_age": 14}, False),
        ({"change_kind": "correction", "subject_age": 40}, False),
    ],
)
def test_consent_of_the_person_concerned(case, change, consent_needed):
    form = {**FORM, **change}
    if consent_needed:
        with pytest.raises(services.InvalidDataError) as err:
            case.submit(form=form, at=THURSDAY)
        assert "form.subject_consent" in err.value.fields
        with pytest.raises(services.InvalidDataError):
            case.submit(form={**form, "subject_consent": False}, at=THURSDAY)
        form = {**form, "subject_consent": True}
    case.submit(form=form, at=THURSDAY)
    assert case.open_steps() == ["receive"]


def test_refusal_proposed_signed_and_handed_back(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse", note="Không có giấy tờ chứng minh nội dung cải chính")
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Đối chiếu lại Sổ đăng ký khai sinh")
    assert case.open_steps() == ["appraise"]
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_verification_adds_three_working_days(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="verify")
    # Civil Status Law art. 28(2): 3 + 3 working days. From Wed 25/11: Thu 26 (1), Fri 27 (2),
    # Mon 30 (3) → Mon 30/11 17:00
    assert dossier.due_at == datetime(2026, 11, 30, 17, 0, tzinfo=VN_TZ)
    verify = case.task("verify")
    assert verify.role == "justice"
    assert verify.due_at == dossier.due_at
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify", decision="propose_approve", findings="Trường học xác nhận ngày sinh")
    assert "register_entry" in err.value.fields
    case.complete("verify", decision="propose_approve", findings="Hồ sơ học bạ xác nhận ngày sinh 13/05/2012",
                  register_entry="Số 12, quyển 01/2026")
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered", fee_collected=FEE)
    assert case.status == "returned"


def test_result_sent_by_post(case):
    case.submit(form=FORM, at=THURSDAY, delivery={"method": "post", "address": "Số 5, thôn Đông, Hà Tĩnh"})
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert [p["address"] for op, p in case.calls if op == "postal.send_result"] == ["Số 5, thôn Đông, Hà Tĩnh"]
    services.record_postal_event(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, event="delivered",
                                 tracking="BCCI000000002")
    assert case.status == "returned"
