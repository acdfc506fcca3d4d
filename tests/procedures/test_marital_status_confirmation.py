"""Xác nhận tình trạng hôn nhân (1.004873) through every path of the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine import services
from engine.calendar import VN_TZ
from engine.models import ClockPause, Task
from tests.procedures.harness import CaseDriver

CODE = "marital_status_confirmation"
FORM = {"purpose": "Kết hôn", "residence": "Thôn Đông, xã An Hòa Thịnh", "intended_spouse": "Lê Văn Bình"}
# Thu 19/11/2026 10:00: 3 working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "marital_status": "single"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _to_leader(case: CaseDriver) -> None:
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)


def test_due_date_is_three_working_days_over_weekend_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3) → Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]
    assert case.task("receive").role == "onestop"


def test_happy_path_at_the_counter(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": case.dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.task("appraise").role == "justice"
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert "documents.sign_result" in case.operations()
    assert case.status == "processed"
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=10000, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.finished
    assert case.dossier.status_code == 10


def test_supplement_then_complete_and_only_once(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", decision="supplement", note="Thiếu giấy tờ chứng minh đã ly hôn")
    assert case.status == "supplement_requested"
    assert dossier.clock_paused_at is not None
    assert case.open_steps() == []
    # the complete dossier arrives Mon 30/11 09:00: the full 3 working days count again
    case.at(datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ))
    case.message("supplement_received", {"documents": ["ban_an_ly_hon.pdf"]})
    assert dossier.due_at == datetime(2026, 12, 3, 17, 0, tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("receive", decision="supplement", note="Thiếu thêm giấy tờ khác")
    assert "decision" in err.value.fields
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    pauses = case.session.scalars(select(ClockPause).where(ClockPause.dossier_id == dossier.id)).all()
    assert len(pauses) == 1
    assert pauses[0].ended_at is not None


def test_refused_at_receipt_with_reasons(case):
    case.submit(form=FORM, at=THURSDAY)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("receive", decision="refuse")
    assert "note" in err.value.fields  # Mẫu 03 states the reasons
    case.complete("receive", decision="refuse", note="Người yêu cầu không cư trú tại xã")
    assert case.status == "not_accepted"
    assert case.dossier.status_code == 3
    assert case.finished
    assert ("notify.status", "not_accepted") in [(op, p.get("template")) for op, p in case.calls]


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    _to_leader(case)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Kiểm tra lại nơi cư trú")
    assert case.open_steps() == ["appraise"]
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_refusal_proposed_signed_and_handed_back(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="propose_refuse", note="Đang có đăng ký kết hôn chưa chấm dứt")
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_verification_caps_the_whole_procedure_at_23_days(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="verify")
    # Decree 123/2015 art. 22: 23 days in total from receipt: Sat 12/12 → Mon 14/12 17:00
    assert dossier.due_at == datetime(2026, 12, 14, 17, 0, tzinfo=VN_TZ)
    assert case.task("verify").due_at == dossier.due_at
    case.complete("verify", decision="propose_approve", findings="UBND nơi cư trú trước xác nhận chưa kết hôn")
    assert case.open_steps() == ["approve"]


@pytest.mark.parametrize("waiting_at", ["receive", "appraise", "approve", "supplement"])
def test_withdrawal_ends_the_case_at_any_waiting_point(case, waiting_at):
    case.submit(form=FORM, at=THURSDAY)
    if waiting_at == "supplement":
        case.complete("receive", decision="supplement", note="Thiếu tờ khai")
    elif waiting_at in ("appraise", "approve"):
        case.complete("receive", **ACCEPT)
        if waiting_at == "approve":
            case.complete("appraise", **APPRAISE)
    services.withdraw_dossier(case.session, case.dossier.code, actor=case.officer("onestop"), reason="Không cần nữa")
    assert case.status == "withdrawal_requested"
    assert case.dossier.status_code == 7
    assert case.finished
    assert case.open_steps() == []
    cancelled = case.session.scalars(select(Task.state).where(Task.dossier_id == case.dossier.id)).all()
    assert "ready" not in cancelled
    with pytest.raises(services.ConflictError):
        services.withdraw_dossier(case.session, case.dossier.code, actor=case.officer("onestop"))


def test_stop_processing(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError):
        services.stop_processing(case.session, case.dossier.code, actor=case.officer("leader"), reason="")
    services.stop_processing(case.session, case.dossier.code, actor=case.officer("leader"),
                             reason="Cơ quan có thẩm quyền yêu cầu dừng")
    assert case.status == "stopped"
    assert case.dossier.status_code == 8
    assert case.finished


def test_warning_then_apology_once_then_overdue_escalation(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    # warning 1 working day before due (Mon 23/11 17:00, the 24th being a holiday)
    assert case.at(datetime(2026, 11, 23, 16, 0, tzinfo=VN_TZ)) == 0
    assert case.at(datetime(2026, 11, 23, 17, 1, tzinfo=VN_TZ)) == 1
    warning = [p for op, p in case.calls if op == "notify.deadline_warning"]
    assert warning == [{"dossier_code": dossier.code, "due_at": "2026-11-25T17:00:00+07:00",
                        "roles": "assignee,onestop"}]
    services.request_apology(case.session, dossier.code, actor=case.officer("justice"),
                             reason="Chờ kết quả tra cứu từ địa phương khác")
    assert case.task("sign_apology").role == "leader"
    with pytest.raises(services.InvalidDataError):
        case.complete("sign_apology", decision="approve", new_due_date="2026-11-28",  # a Saturday
                      reason="Chờ kết quả tra cứu")
    case.complete("sign_apology", decision="approve", new_due_date="2026-11-30", reason="Chờ kết quả tra cứu")
    assert dossier.due_at == datetime(2026, 11, 30, 17, 0, tzinfo=VN_TZ)
    assert case.task("appraise").due_at == dossier.due_at
    assert ("notify.status", "apology") in [(op, p.get("template")) for op, p in case.calls]
    with pytest.raises(services.ConflictError, match="once"):
        services.request_apology(case.session, dossier.code, actor=case.officer("justice"), reason="Lần hai")
    # the old due moment passes quietly; the new one escalates to the leader
    assert case.at(datetime(2026, 11, 26, 9, 0, tzinfo=VN_TZ)) == 0
    assert case.at(datetime(2026, 11, 30, 17, 0, 5, tzinfo=VN_TZ)) == 1
    assert [p["roles"] for op, p in case.calls if op == "notify.overdue_escalation"] == ["leader"]
    case.complete("appraise", **APPRAISE)
    assert case.open_steps() == ["approve"]


def test_result_sent_by_post_and_delivered(case):
    case.submit(form=FORM, at=THURSDAY, delivery={"method": "post", "address": "Số 5, thôn Đông, Hà Tĩnh"})
    _to_leader(case)
    case.complete("approve", **APPROVE)
    assert [p["address"] for op, p in case.calls if op == "postal.send_result"] == ["Số 5, thôn Đông, Hà Tĩnh"]
    assert case.open_steps() == []
    services.record_postal_event(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, event="delivered",
                                 tracking="BCCI000000001")
    assert case.status == "returned"
    assert case.finished


def test_result_returned_by_post_is_handed_back_at_the_counter(case):
    case.submit(form=FORM, at=THURSDAY, delivery={"method": "post", "address": "Số 5, thôn Đông, Hà Tĩnh"})
    _to_leader(case)
    case.complete("approve", **APPROVE)
    services.record_postal_event(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, event="returned")
    assert case.open_steps() == ["hand_back_returned"]
    assert case.task("hand_back_returned").role == "onestop"
    case.complete("hand_back_returned", decision="delivered", receiver_name="Phạm Thị Dung")
    assert case.status == "returned"


def test_post_without_address_is_refused(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form=FORM, at=THURSDAY, delivery={"method": "post"})
    assert "delivery.address" in err.value.fields


def test_online_payment_before_the_result_is_released(case):
    case.submit(form=FORM, at=THURSDAY, channel="online")
    _to_leader(case)
    case.complete("approve", **APPROVE)
    assert case.status == "payment_requested"
    assert case.dossier.status_code == 6
    assert case.open_steps() == []
    with pytest.raises(services.InvalidDataError) as err:
        services.record_payment(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, amount=5000,
                                reference="PAY-1")
    assert err.value.fields == {"amount": ["must be 10000"]}
    services.record_payment(case.session, case.dossier.code, actor=services.SYSTEM_ACTOR, amount=10000,
                            reference="PAY-1")
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={"purpose": "Kết hôn"}, at=THURSDAY)
    assert err.value.fields == {"form.residence": ["required"]}


def test_rework_150_times_through_the_lifecycle_keeps_the_state_flat(case):
    from engine.models import WorkflowState

    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    sizes = []
    for _ in range(150):
        case.complete("appraise", **APPRAISE)
        case.complete("approve", decision="return", reason="Kiểm tra lại")
        sizes.append(case.session.get(WorkflowState, case.dossier.id).size)
    assert max(sizes[-10:]) <= sizes[0] * 1.2
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"
