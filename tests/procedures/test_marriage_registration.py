"""Đăng ký kết hôn (1.000894) through its own paths inside the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "marriage_registration"
FORM = {
    "husband_full_name": "Lê Văn Bình", "husband_id_number": "001098000222", "husband_birth_date": "1998-03-14",
    "wife_full_name": "Phạm Thị Dung", "wife_id_number": "001199000111", "wife_birth_date": "1999-07-02",
    "residence": "Thôn Đông, xã An Hòa Thịnh",
}
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "marital_status_source": "database", "conditions_met": True}
CEREMONY = {"decision": "propose_approve", "husband_present": True, "wife_present": True,
            "consent_confirmed": True, "register_signed": True, "register_number": "15/2026"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _fee_due(case: CaseDriver) -> int:
    wf = services.load_workflow(case.session, case.dossier)
    return next(t.data["fee_due"] for t in wf.get_tasks() if "fee_due" in t.data)


def test_same_day_before_15h(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # received Thu 19/11 10:00, before 15:00 → due the same day at 17:00
    assert dossier.due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)


def test_after_15h_due_next_working_day_over_the_holiday(case):
    dossier = case.submit(form=FORM, at=datetime(2026, 11, 23, 15, 30, tzinfo=VN_TZ))
    # received Mon 23/11 15:30, after 15:00 → next working day; Tue 24/11 is a holiday
    # (Ngày Văn hóa Việt Nam) → due Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]


def test_happy_path_both_parties_sign_then_chairman_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    assert case.task("receive").role == "onestop"
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": case.dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.task("appraise").role == "justice"
    case.complete("appraise", **APPRAISE)
    # both parties appear before the proposal goes to the leader
    assert case.open_steps() == ["ceremony"]
    assert case.task("ceremony").role == "justice"
    assert case.task("ceremony").due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)
    case.complete("ceremony", **CEREMONY)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Lê Văn Bình, Phạm Thị Dung")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished


@pytest.mark.parametrize("missing", ["husband_present", "wife_present", "consent_confirmed", "register_signed"])
def test_approval_needs_both_parties_present_and_signed(case, missing):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("ceremony", **{**CEREMONY, missing: False})
    assert missing in err.value.fields
    assert case.open_steps() == ["ceremony"]


def test_online_submission_still_needs_both_parties_in_person(case):
    case.submit(form=FORM, at=THURSDAY, channel="online")
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    assert case.open_steps() == ["ceremony"]  # partial online service: the signing is in person
    case.complete("ceremony", **CEREMONY)
    case.complete("approve", **APPROVE)
    # free: no online payment step, straight to the counter
    assert case.status == "processed"
    assert case.open_steps() == ["hand_back"]


def test_result_is_handed_over_in_person_only(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form=FORM, at=THURSDAY, delivery={"method": "post", "address": "Số 5, thôn Đông, Hà Tĩnh"})
    assert "delivery.method" in err.value.fields


def test_refusal_after_appraisal_skips_the_ceremony(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse", note="Bên nam đang có vợ (CSDL hộ tịch)")
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"
    assert case.finished


def test_refusal_at_the_ceremony_when_consent_is_not_confirmed(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("ceremony", decision="propose_refuse", husband_present=True, wife_present=False)
    assert "note" in err.value.fields
    case.complete("ceremony", decision="propose_refuse", husband_present=True, wife_present=True,
                  consent_confirmed=False, note="Bên nữ không đồng ý kết hôn tại buổi đăng ký")
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("ceremony", **CEREMONY)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Ghi lại số đăng ký trong Sổ hộ tịch")
    assert case.open_steps() == ["appraise"]  # the process runs again from its start
    case.complete("appraise", **APPRAISE)
    case.complete("ceremony", **{**CEREMONY, "register_number": "16/2026"})
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_verification_adds_five_working_days_then_ceremony(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="verify", note="Bên nam từng cư trú ở tỉnh khác")
    # Civil Status Law art. 18(2): up to 5 working days when verification is needed, added to the
    # same-day due Thu 19/11: Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3), Thu 26 (4),
    # Fri 27 (5) → Fri 27/11 17:00
    assert dossier.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)
    assert case.task("verify").role == "justice"
    assert case.task("verify").due_at == dossier.due_at
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify", decision="propose_approve")
    assert "findings" in err.value.fields
    case.at(datetime(2026, 11, 25, 9, 0, tzinfo=VN_TZ))
    case.complete("verify", decision="propose_approve", findings="UBND nơi cư trú trước xác nhận bên nam chưa kết hôn")
    assert case.open_steps() == ["ceremony"]
    assert case.task("ceremony").due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    case.complete("ceremony", **CEREMONY)
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"
    assert dossier.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)


def test_verification_finds_an_impediment_and_refuses(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="verify")
    assert dossier.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify", decision="propose_refuse", findings="Bên nữ chưa đủ 18 tuổi")
    assert "note" in err.value.fields
    case.complete("verify", decision="propose_refuse", findings="Bên nữ sinh năm 2009, chưa đủ 18 tuổi",
                  note="Không đủ điều kiện kết hôn (Luật HNGĐ điều 8)")
    assert case.open_steps() == ["approve"]  # no ceremony for a refusal
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_marriage_registration_is_free(case):
    case.submit(form=FORM, at=THURSDAY)
    # Civil Status Law art. 11(1)(b): no fee for domestic marriage registration
    assert _fee_due(case) == 0
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("ceremony", **CEREMONY)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # no payment requested
    case.complete("hand_back", decision="delivered", fee_collected=_fee_due(case))
    assert case.status == "returned"
