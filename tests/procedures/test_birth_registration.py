"""Đăng ký khai sinh (1.001193) through its paths in the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from SpiffWorkflow.util.task import TaskState

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "birth_registration"
FORM = {
    "child_full_name": "Nguyễn Minh An",
    "birth_date": "2026-11-02",
    "gender": "male",
    "birth_place": "Trạm y tế xã An Hòa Thịnh, Hà Tĩnh",
    "mother_full_name": "Phạm Thị Dung",
    "mother_id_number": "001199000111",
    "father_full_name": "Nguyễn Văn Bình",
    "requester_relationship": "Mẹ",
}
LATE_FORM = {**FORM, "birth_date": "2026-06-01", "late_registration": True}
# Thu 19/11/2026 10:00, before the 15:00 cut-off: due the same day at 17:00.
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "birth_proof": "birth_certificate", "parents_marriage_checked": True,
            "personal_id_number": "042226000123"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _templates(case: CaseDriver) -> list[str]:
    return [p["template"] for op, p in case.calls if op == "notify.status"]


def _data(case: CaseDriver, name: str) -> Any:
    """A process variable as the case's open tasks see it."""
    wf = services.load_workflow(case.session, case.dossier)
    return next((t.data[name] for t in wf.get_tasks(state=TaskState.READY) if name in t.data), None)


@pytest.mark.parametrize(("received", "due"), [
    # before 15:00: the same day at 17:00
    (datetime(2026, 11, 19, 10, 0), datetime(2026, 11, 19, 17, 0)),
    # exactly 15:00 is not "after 15:00": still the same day
    (datetime(2026, 11, 19, 15, 0), datetime(2026, 11, 19, 17, 0)),
    # Fri 20/11 15:30, after 15:00: the next working day is Mon 23/11 → 17:00
    (datetime(2026, 11, 20, 15, 30), datetime(2026, 11, 23, 17, 0)),
    # Mon 23/11 15:30: Tue 24/11 is a holiday (Ngày Văn hóa Việt Nam) → Wed 25/11 17:00
    (datetime(2026, 11, 23, 15, 30), datetime(2026, 11, 25, 17, 0)),
    # Sat 21/11 09:00 (online, a day off): the next working day Mon 23/11 → 17:00
    (datetime(2026, 11, 21, 9, 0), datetime(2026, 11, 23, 17, 0)),
])
def test_same_day_with_the_15h_cut_off(case, received, due):
    dossier = case.submit(form=FORM, at=received.replace(tzinfo=VN_TZ), channel="online")
    assert dossier.due_at == due.replace(tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]


def test_happy_path_at_the_counter(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    assert case.task("receive").role == "onestop"
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    appraise = case.task("appraise")
    assert appraise.role == "justice"
    assert appraise.due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert _templates(case) == ["accepted", "processed"]
    assert case.task("hand_back").role == "onestop"
    assert _data(case, "late_registration_fee") is None  # on time: nothing to collect
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished


def test_approval_needs_the_proof_of_birth(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve")
    assert "birth_proof" in err.value.fields
    # no giấy chứng sinh: a witness statement is accepted (Decree 123/2015 art. 9)
    case.complete("appraise", decision="propose_approve", birth_proof="witness_statement")
    assert case.open_steps() == ["approve"]


def test_refusal_proposed_signed_and_handed_back(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse", note="Trẻ đã được đăng ký khai sinh tại xã khác")
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", decision="return", reason="Kiểm tra lại họ tên người cha")
    assert case.open_steps() == ["appraise"]
    assert case.task("appraise").role == "justice"
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["result"]


def test_late_registration_is_marked_for_the_provincial_fee(case):
    # Civil Status Law art. 15: more than 60 days after the birth. The catalogue's fee condition on
    # late_registration charges the province's fee (Hà Tĩnh example 10,000 VND); at the counter the
    # one-stop officer collects it on hand-back.
    dossier = case.submit(form=LATE_FORM, at=THURSDAY)
    assert services.fee_due(dossier.procedure.catalogue["fee"], dossier.form) == 10000
    assert services.fee_due(dossier.procedure.catalogue["fee"], FORM) == 0
    late_rate = {"amount_vnd": 10000}
    assert dossier.due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)  # same legal time
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert _data(case, "late_registration_fee") == "province"
    assert "quá hạn" in _data(case, "fee_note")
    case.complete("hand_back", decision="delivered", fee_collected=late_rate["amount_vnd"],
                  receiver_name="Phạm Thị Dung")
    assert case.status == "returned"


def test_late_registration_refused_is_not_marked(case):
    case.submit(form=LATE_FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="propose_refuse", note="Không có giấy tờ chứng minh việc sinh")
    case.complete("approve", **APPROVE)
    assert _data(case, "late_registration_fee") is None
    assert case.open_steps() == ["hand_back"]


def test_online_on_time_registration_is_free(case):
    dossier = case.submit(form=FORM, at=THURSDAY, channel="online")
    assert services.fee_due(dossier.procedure.catalogue["fee"], dossier.form) == 0
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    # online: the applicant checks the draft before the leader signs (Decree 87/2020 art. 12)
    case.run_services()
    assert case.open_steps() == []
    assert ("notify.status", {"dossier_code": dossier.code, "template": "draft_ready", "to": "0903333444"}) \
        in case.calls
    case.message("draft_confirmed", {"confirmed": True})
    case.complete("approve", **APPROVE)
    # full online, but nothing to pay: no payment request, straight to hand-back
    assert case.status == "processed"
    assert case.open_steps() == ["hand_back"]
    with pytest.raises(services.InvalidDataError) as err:  # the case's fee is 0 VND
        services.record_payment(case.session, dossier.code, actor=services.SYSTEM_ACTOR, amount=10000,
                                reference="PAY-1")
    assert err.value.fields == {"amount": ["must be 0"]}
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={**FORM, "birth_date": "02/11/2026", "mother_id_number": "123"}, at=THURSDAY)
    assert set(err.value.fields) == {"form.birth_date", "form.mother_id_number"}
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={k: v for k, v in FORM.items() if k != "mother_full_name"}, at=THURSDAY)
    assert err.value.fields == {"form.mother_full_name": ["required"]}


def test_online_draft_corrections_go_back_to_the_specialist(case):
    case.submit(form=FORM, at=THURSDAY, channel="online")
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.run_services()
    case.message("draft_corrections", {"note": "Sai tên đệm của mẹ: Thị Dung"})
    assert case.open_steps() == ["appraise"]  # the specialist corrects, the draft goes out again
    assert _data(case, "draft_feedback") == {"note": "Sai tên đệm của mẹ: Thị Dung"}
    case.complete("appraise", **APPRAISE)
    case.run_services()
    case.message("draft_confirmed", {"confirmed": True})
    assert case.open_steps() == ["approve"]


def test_a_refusal_proposal_sends_no_draft(case):
    case.submit(form=FORM, at=THURSDAY, channel="online")
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="propose_refuse", note="Không có giấy tờ chứng minh việc sinh")
    assert case.open_steps() == ["approve"]
