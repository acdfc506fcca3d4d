"""Liên thông khai sinh, thường trú, thẻ BHYT cho trẻ em dưới 6 tuổi (3.000722) through its paths."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from SpiffWorkflow.util.task import TaskState as SpiffState
from sqlalchemy import select

from engine import services
from engine.calendar import VN_TZ
from engine.models import Task, Timer
from tests.procedures.harness import CaseDriver

CODE = "linked_birth_residence_health_insurance"
FORM = {
    "child_full_name": "Nguyễn Minh An",
    "birth_date": "2026-11-10",
    "gender": "male",
    "birth_place": "Bệnh viện Đa khoa tỉnh Hà Tĩnh",
    "mother_full_name": "Phạm Thị Dung",
    "mother_id_number": "001199000111",
    "father_full_name": "Nguyễn Văn Bình",
    "requester_relationship": "Mẹ",
    "residence_address": "Số 5, thôn Đông, xã An Hòa Thịnh, Hà Tĩnh",
    "head_of_household": "Nguyễn Văn Bình",
    "health_facility": "Trạm Y tế xã An Hòa Thịnh",
}
# Thu 19/11/2026 10:00: 3 working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
REGISTER = {"decision": "propose_approve", "birth_proof": "birth_certificate", "personal_id_number": "042226000123"}
POLICE_YES = {"residence_registered": True, "address": FORM["residence_address"]}
CARD = {"card_number": "TE1424220000123"}
REVIEW = {"decision": "propose_approve"}
APPROVE = {"decision": "approve"}
# Each agency's deadline: 2 working days after the data were sent on Thu 19/11:
# Fri 20 (1), Mon 23 (2) → Mon 23/11 17:00.
AGENCY_DEADLINE = datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)
POLICE_TIMER, INSURANCE_TIMER = "Quá hạn Công an trả lời", "Quá hạn Bảo hiểm xã hội trả lời"


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _registered(case: CaseDriver, **submit: Any) -> None:
    case.submit(form=FORM, at=THURSDAY, **submit)
    case.complete("receive", **ACCEPT)
    case.complete("register_birth", **REGISTER)


def _sent(case: CaseDriver) -> list[dict[str, Any]]:
    return [p for op, p in case.calls if op == "interagency.send"]


def _overdue_notices(case: CaseDriver) -> list[str]:
    return [p["agency"] for op, p in case.calls if op == "notify.status" and p["template"] == "agency_overdue"]


def _variable(case: CaseDriver, name: str) -> Any:
    """A process variable as the open tasks of the case see it."""
    wf = services.load_workflow(case.session, case.dossier)
    for task in wf.get_tasks(state=SpiffState.READY):
        if name in task.data:
            return task.data[name]
    raise AssertionError(f"no open task sees {name!r}")


def _timers(case: CaseDriver) -> list[str]:
    return sorted(case.session.scalars(select(Timer.name).where(Timer.dossier_id == case.dossier.id)).all())


def test_due_date_is_three_working_days_and_the_birth_step_same_day(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # the whole chain: Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3) → Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    case.complete("receive", **ACCEPT)
    # the birth itself is registered the same working day
    assert case.task("register_birth").due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)


def test_birth_step_received_after_15h_is_due_the_next_working_day(session):
    case = CaseDriver(session, CODE)
    late = datetime(2026, 11, 20, 15, 30, tzinfo=VN_TZ)  # Fri 15:30
    dossier = case.submit(form=FORM, at=late)
    # chain: Mon 23 (1), Tue 24 holiday, Wed 25 (2), Thu 26 (3) → Thu 26/11 17:00
    assert dossier.due_at == datetime(2026, 11, 26, 17, 0, tzinfo=VN_TZ)
    case.complete("receive", **ACCEPT)
    # after 15:00 on Friday → the next working day, Mon 23/11 17:00
    assert case.task("register_birth").due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)


def test_happy_path_both_agencies_answer(case):
    _registered(case)
    assert ("notify.status", {"dossier_code": case.dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.status == "processing"
    sent = _sent(case)
    assert sorted(p["agency"] for p in sent) == ["police", "social_insurance"]
    police = next(p for p in sent if p["agency"] == "police")
    insurance = next(p for p in sent if p["agency"] == "social_insurance")
    assert police == {"agency": "police", "dossier_code": case.dossier.code, "personal_id_number": "042226000123",
                      "child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-10",
                      "residence_address": FORM["residence_address"], "head_of_household": "Nguyễn Văn Bình"}
    assert insurance == {"agency": "social_insurance", "dossier_code": case.dossier.code,
                         "personal_id_number": "042226000123", "child_full_name": "Nguyễn Minh An",
                         "birth_date": "2026-11-10", "health_facility": "Trạm Y tế xã An Hòa Thịnh"}
    # both waits are armed with their own deadline, beside the lifecycle's warning and overdue timers
    timers = case.session.scalars(select(Timer).where(Timer.dossier_id == case.dossier.id)).all()
    agency_due = sorted(t.run_at for t in timers if t.name in (POLICE_TIMER, INSURANCE_TIMER))
    assert agency_due == [AGENCY_DEADLINE, AGENCY_DEADLINE]
    assert case.open_steps() == []
    case.message("police_answer", POLICE_YES)
    case.message("insurance_answer", CARD)
    assert case.task("review").role == "justice"
    assert _variable(case, "residence_registered") is True
    assert _variable(case, "health_insurance_card") == "TE1424220000123"
    assert _timers(case) == ["Còn 1 ngày làm việc", "Quá hạn xử lý"]  # only the lifecycle's are left
    case.complete("review", **REVIEW)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["result"]
    assert case.status == "processed"
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.finished
    assert _overdue_notices(case) == []


@pytest.mark.parametrize("first", ["police_answer", "insurance_answer"])
def test_one_answer_alone_leaves_the_case_waiting_in_either_order(case, first):
    _registered(case)
    answers = {"police_answer": POLICE_YES, "insurance_answer": CARD}
    second = next(name for name in answers if name != first)
    case.message(first, answers[first])
    assert case.open_steps() == []
    assert case.status == "processing"
    assert not case.finished
    with pytest.raises(services.ConflictError):
        case.message(first, answers[first])  # that agency's wait is over
    case.message(second, answers[second])
    assert case.open_steps() == ["review"]


def test_police_refusal_of_residence_is_recorded_for_the_review(case):
    _registered(case)
    case.message("insurance_answer", CARD)
    case.message("police_answer", {"residence_registered": False, "reason": "Chỗ ở chưa hợp pháp"})
    assert _variable(case, "residence_registered") is False
    case.complete("review", decision="propose_approve", note="Công an không đăng ký thường trú; đã báo gia đình")
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_missing_answer_escalates_at_its_deadline_then_the_answer_closes_the_chase(case):
    _registered(case)
    case.at(datetime(2026, 11, 20, 9, 0, tzinfo=VN_TZ))
    case.message("insurance_answer", CARD)
    # just before the deadline nothing happens
    assert case.at(datetime(2026, 11, 23, 16, 59, tzinfo=VN_TZ)) == 0
    assert _overdue_notices(case) == []
    # at the deadline: the police timer (and the lifecycle's warning, also Mon 23/11 17:00)
    assert case.at(datetime(2026, 11, 23, 17, 0, 5, tzinfo=VN_TZ)) == 2
    assert _overdue_notices(case) == ["police"]
    notice = next(p for op, p in case.calls if op == "notify.status" and p["template"] == "agency_overdue")
    assert notice == {"dossier_code": case.dossier.code, "template": "agency_overdue", "to": "0903333444",
                      "agency": "police"}
    assert case.open_steps() == ["chase_police"]
    chase = case.task("chase_police")
    assert chase.role == "onestop"
    # one working day to chase: Tue 24 is a holiday → Wed 25/11 17:00
    assert chase.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    # the wait goes on: the late answer still arrives, and the open chase is closed with it
    case.at(datetime(2026, 11, 25, 9, 0, tzinfo=VN_TZ))
    case.message("police_answer", POLICE_YES)
    assert case.open_steps() == ["review"]
    states = case.session.scalars(select(Task.state).where(Task.dossier_id == case.dossier.id,
                                                           Task.spec_name == "chase_police")).all()
    assert states == ["cancelled"]
    case.complete("review", **REVIEW)
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_both_agencies_late_both_chased_then_answered(case):
    _registered(case)
    assert case.at(datetime(2026, 11, 23, 17, 0, 5, tzinfo=VN_TZ)) == 3  # two agencies + the warning
    assert sorted(_overdue_notices(case)) == ["police", "social_insurance"]
    assert case.open_steps() == ["chase_insurance", "chase_police"]
    assert case.task("chase_insurance").role == "onestop"
    with pytest.raises(services.InvalidDataError):
        case.complete("chase_police", decision="delivered")  # how the agency was reached is required
    case.complete("chase_police", decision="delivered", reminder_channel="phone", contact_person="Trung úy Lê Văn C",
                  expected_date="2026-11-25")
    case.complete("chase_insurance", decision="delivered", reminder_channel="official_letter")
    assert case.open_steps() == []
    assert not case.finished
    case.message("insurance_answer", CARD)
    assert case.open_steps() == []
    case.message("police_answer", POLICE_YES)
    # the chase tasks' "delivered" is not the proposal: the review decides it
    assert case.open_steps() == ["review"]
    case.complete("review", **REVIEW)
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["result"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_refusal_at_birth_registration_sends_nothing_and_is_signed(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("register_birth", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("register_birth", decision="propose_refuse", note="Trẻ đã được đăng ký khai sinh tại nơi khác")
    assert _sent(case) == []
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_approval_needs_the_birth_proof_and_personal_id_number(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("register_birth", decision="propose_approve")
    assert set(err.value.fields) == {"birth_proof", "personal_id_number"}


def test_leader_returns_then_approves_and_the_agencies_get_the_corrected_data(case):
    _registered(case)
    case.message("police_answer", POLICE_YES)
    case.message("insurance_answer", CARD)
    case.complete("review", **REVIEW)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Sai tên đệm của trẻ, đăng ký lại")
    assert case.open_steps() == ["register_birth"]
    case.complete("register_birth", **{**REGISTER, "note": "Đã sửa tên đệm"})
    assert [p["agency"] for p in _sent(case)].count("police") == 2
    assert [p["agency"] for p in _sent(case)].count("social_insurance") == 2
    assert case.open_steps() == []
    case.message("insurance_answer", CARD)
    case.message("police_answer", POLICE_YES)
    case.complete("review", **REVIEW)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_verification_caps_the_whole_chain_at_five_working_days(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("register_birth", decision="verify", birth_proof="witness_statement")
    # 5 working days in total from receipt: Fri 20, Mon 23, Wed 25, Thu 26, Fri 27 → Fri 27/11 17:00
    assert dossier.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)
    assert case.task("verify_birth").due_at == dossier.due_at
    assert case.task("verify_birth").role == "justice"
    assert _sent(case) == []
    case.at(datetime(2026, 11, 23, 10, 0, tzinfo=VN_TZ))
    case.complete("verify_birth", decision="propose_approve", findings="Người làm chứng xác nhận việc sinh",
                  birth_proof="witness_statement", personal_id_number="042226000123")
    assert sorted(p["agency"] for p in _sent(case)) == ["police", "social_insurance"]
    # the agencies' 2 working days run from the sending on Mon 23: Wed 25 (1), Thu 26 (2)
    timers = case.session.scalars(select(Timer).where(Timer.dossier_id == dossier.id)).all()
    assert {t.run_at for t in timers if t.name == POLICE_TIMER} == {
        datetime(2026, 11, 26, 17, 0, tzinfo=VN_TZ)}


def test_verification_may_end_in_refusal(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("register_birth", decision="verify")
    case.complete("verify_birth", decision="propose_refuse", findings="Không xác minh được việc sinh")
    assert _sent(case) == []
    assert case.open_steps() == ["approve"]


def test_free_and_full_online_no_payment_step(case):
    # Civil Status Law art. 11: on-time birth registration is free; the under-6 card is state-funded.
    case.submit(form=FORM, at=THURSDAY, channel="online")
    assert services.fee_due(case.dossier.terms["fee"], case.dossier.form) == 0
    case.complete("receive", **ACCEPT)
    case.complete("register_birth", **REGISTER)
    case.message("police_answer", POLICE_YES)
    case.message("insurance_answer", CARD)
    case.complete("review", **REVIEW)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # no payment requested
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=0)
    assert case.status == "returned"


def test_withdrawal_while_waiting_for_the_agencies(case):
    _registered(case)
    case.message("police_answer", POLICE_YES)
    services.withdraw_dossier(case.session, case.dossier.code, actor=case.officer("onestop"), reason="Chuyển nơi ở")
    assert case.status == "withdrawal_requested"
    assert case.finished
    assert case.open_steps() == []
    assert _timers(case) == []
    with pytest.raises(services.ConflictError):
        case.message("insurance_answer", CARD)
