"""Cấp bản sao Trích lục hộ tịch (2.000635) through its paths in the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "civil_status_extract_copy"
FORM = {
    "event_kind": "birth",
    "person_full_name": "Phạm Thị Dung",
    "person_id_number": "001199000111",
    "registration_place": "UBND xã An Hòa Thịnh, Hà Tĩnh",
    "requester_relationship": "Bản thân",
    "purpose": "Bổ sung hồ sơ nhập học",
    "copies": 2,
}
# Thu 19/11/2026 10:00, before the 15:00 cut-off: due the same day at 17:00.
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "record_source": "electronic_database"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _to_hand_back(case: CaseDriver, appraisal: dict | None = None) -> None:
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **(appraisal or APPRAISE))
    case.complete("approve", **APPROVE)


@pytest.mark.parametrize(("received", "due"), [
    (datetime(2026, 11, 19, 14, 59), datetime(2026, 11, 19, 17, 0)),
    # Thu 19/11 15:01, after 15:00: the next working day Fri 20/11 → 17:00
    (datetime(2026, 11, 19, 15, 1), datetime(2026, 11, 20, 17, 0)),
    # Mon 23/11 15:30: Tue 24/11 is a holiday → Wed 25/11 17:00
    (datetime(2026, 11, 23, 15, 30), datetime(2026, 11, 25, 17, 0)),
])
def test_same_day_with_the_15h_cut_off(case, received, due):
    dossier = case.submit(form=FORM, at=received.replace(tzinfo=VN_TZ), channel="online")
    assert dossier.due_at == due.replace(tzinfo=VN_TZ)


def test_happy_path_at_the_counter_collects_8000_per_copy(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Circular 281/2016: 8,000 VND per copy × 2 copies
    assert services.fee_due(dossier.procedure.catalogue["fee"], dossier.form) == 16000
    assert case.task("receive").role == "onestop"
    case.complete("receive", **ACCEPT)
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    appraise = case.task("appraise")
    assert appraise.role == "justice"
    assert appraise.due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve")  # where the event was found
    assert "record_source" in err.value.fields
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": dossier.code, "kind": "result"}]
    # counter channel: the fee is collected on hand-back, no online payment request
    assert case.status == "processed"
    assert [p["template"] for op, p in case.calls if op == "notify.status"] == ["accepted", "processed"]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=16000, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished


def test_refusal_proposed_signed_and_handed_back(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse", note="Không tìm thấy sự kiện hộ tịch trong sổ và CSDL")
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered", fee_collected=0)
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", decision="return", reason="Đối chiếu lại sổ đăng ký khai sinh gốc")
    assert case.open_steps() == ["appraise"]
    case.complete("appraise", decision="propose_approve", record_source="paper_register")
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_online_payment_is_copies_times_8000(case):
    dossier = case.submit(form={**FORM, "copies": 3}, at=THURSDAY, channel="online")
    assert services.fee_due(dossier.procedure.catalogue["fee"], dossier.form) == 24000
    _to_hand_back(case)
    assert case.status == "payment_requested"
    assert case.dossier.status_code == 6
    assert case.open_steps() == []
    with pytest.raises(services.InvalidDataError) as err:
        services.record_payment(case.session, dossier.code, actor=services.SYSTEM_ACTOR, amount=8000,
                                reference="PAY-1")
    assert err.value.fields == {"amount": ["must be 24000"]}
    services.record_payment(case.session, dossier.code, actor=services.SYSTEM_ACTOR, amount=24000,
                            reference="PAY-1")
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=0)  # already paid online
    assert case.status == "returned"


def test_online_refusal_asks_no_payment(case):
    case.submit(form=FORM, at=THURSDAY, channel="online")
    _to_hand_back(case, {"decision": "propose_refuse", "note": "Người yêu cầu không có quyền yêu cầu cấp bản sao"})
    assert case.status == "processed"
    assert case.open_steps() == ["hand_back"]


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={**FORM, "copies": 0}, at=THURSDAY)
    assert list(err.value.fields) == ["form.copies"]
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={k: v for k, v in FORM.items() if k != "copies"}, at=THURSDAY)
    assert err.value.fields == {"form.copies": ["required"]}
