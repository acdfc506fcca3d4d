"""Công nhận hộ nghèo, hộ cận nghèo phát sinh trong năm (1.011607): review, public posting with its
timer, complaints and re-check, through the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine import services
from engine.calendar import VN_TZ
from engine.models import Timer
from tests.procedures.harness import CaseDriver

CODE = "poor_household_recognition"
FORM = {"household_head": "Trần Văn Hùng", "residence": "Thôn Đông, xã An Hòa Thịnh", "area": "rural",
        "members": 4, "request": "poor", "reason": "Chủ hộ tai nạn lao động, mất nguồn thu nhập"}
# Thu 19/11/2026 10:00: working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
# Decree 07/2021 art. 3: rural, income ≤ 1,500,000 VND/person/month and ≥ 3 of 12 indicators deprived.
REVIEW = {"decision": "propose_approve", "classification": "poor", "area": "rural", "income_per_person_vnd": 1200000,
          "deprivations": ["employment", "health_insurance", "housing_quality"]}
NO_COMPLAINT = {"decision": "propose_approve", "complaint_received": False}
APPROVE = {"decision": "approve"}
# Review on Thu 19/11: posting for 3 working days, Fri 20 (1), Mon 23 (2), Wed 25 (3) → Wed 25/11 17:00.
POSTING_ENDS = datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _posting_timer(case: CaseDriver) -> datetime | None:
    rows = case.session.scalars(select(Timer).where(Timer.dossier_id == case.dossier.id,
                                                    Timer.name == "Hết thời gian niêm yết")).all()
    assert len(rows) <= 1
    return rows[0].run_at if rows else None


def _to_posting(case: CaseDriver) -> None:
    case.complete("receive", **ACCEPT)
    case.complete("review", **REVIEW)


def _posting_over(case: CaseDriver) -> None:
    _to_posting(case)
    assert case.at(datetime(2026, 11, 25, 17, 0, 5, tzinfo=VN_TZ)) == 1


def test_due_date_is_seven_working_days_over_weekend_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3), Thu 26 (4), Fri 27 (5), Mon 30 (6), Tue 1/12 (7)
    assert dossier.due_at == datetime(2026, 12, 1, 17, 0, tzinfo=VN_TZ)
    assert dossier.terms["legal_time"] == {"value": 7, "unit": "working_days"}
    assert case.open_steps() == ["receive"]
    assert case.task("receive").role == "onestop"


def test_happy_path_posting_ends_without_complaint(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) in case.calls
    review = case.task("review")
    assert review.role == "culture"
    # the officer's 2 working days: Fri 20 (1), Mon 23 (2)
    assert review.due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)
    case.complete("review", **REVIEW)
    # posted: nobody has a task until the posting period is over
    assert case.open_steps() == []
    assert _posting_timer(case) == POSTING_ENDS
    assert case.status == "processing"
    assert case.at(datetime(2026, 11, 21, 9, 0, tzinfo=VN_TZ)) == 0  # Saturday
    assert case.at(datetime(2026, 11, 25, 16, 59, tzinfo=VN_TZ)) == 0
    assert case.open_steps() == []
    assert case.at(datetime(2026, 11, 25, 17, 0, 5, tzinfo=VN_TZ)) == 1
    assert _posting_timer(case) is None
    assert case.open_steps() == ["record_complaints"]
    complaints = case.task("record_complaints")
    assert complaints.role == "culture"
    # opened after office hours on Wed 25: 1 working day counts from Thu 26 → Fri 27/11 17:00
    assert complaints.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)
    case.complete("record_complaints", **NO_COMPLAINT)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Trần Văn Hùng")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished
    # no deadline warning or escalation: the case ended before Mon 30/11 17:00
    assert not {"notify.deadline_warning", "notify.overdue_escalation"} & set(case.operations())


def test_review_applies_the_multidimensional_poverty_line(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", decision="propose_approve")
    assert set(err.value.fields) == {"classification", "area", "income_per_person_vnd", "deprivations"}
    # poor = 3 or more indicators deprived
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", **{**REVIEW, "deprivations": ["employment", "nutrition"]})
    assert set(err.value.fields) == {"deprivations"}
    # rural income line 1,500,000 VND; urban 2,000,000 VND
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", **{**REVIEW, "income_per_person_vnd": 1600000})
    assert set(err.value.fields) == {"income_per_person_vnd"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", **{**REVIEW, "area": "urban", "income_per_person_vnd": 2100000})
    assert set(err.value.fields) == {"income_per_person_vnd"}
    # near-poor = 2 or fewer indicators
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", **{**REVIEW, "classification": "near_poor"})
    assert set(err.value.fields) == {"deprivations"}
    case.complete("review", **{**REVIEW, "classification": "near_poor", "area": "urban",
                               "income_per_person_vnd": 1900000, "deprivations": ["telecom"]})
    assert case.open_steps() == []
    assert _posting_timer(case) == POSTING_ENDS


def test_not_eligible_is_refused_without_posting(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", decision="propose_refuse")
    assert "note" in err.value.fields  # the written answer states the reasons
    case.complete("review", decision="propose_refuse",
                  note="Thu nhập bình quân 2.400.000 đồng/người/tháng, trên chuẩn cận nghèo")
    assert _posting_timer(case) is None
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"
    assert case.finished


@pytest.mark.parametrize(("outcome", "kind"), [("propose_approve", "result"), ("propose_refuse", "refusal")])
def test_complaint_during_posting_is_rechecked_then_proposed(case, outcome, kind):
    dossier = case.submit(form=FORM, at=THURSDAY)
    _posting_over(case)
    # a complaint cannot be passed over: it goes to the re-check, with what was said
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("record_complaints", decision="propose_approve", complaint_received=True,
                      complaint_summary="Hộ có xe tải cho thuê, thu nhập cao hơn kê khai")
    assert set(err.value.fields) == {"decision"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("record_complaints", decision="verify", complaint_received=True)
    assert set(err.value.fields) == {"complaint_summary"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("record_complaints", decision="verify", complaint_received=False)
    assert set(err.value.fields) == {"decision"}
    case.at(datetime(2026, 11, 26, 8, 30, tzinfo=VN_TZ))
    case.complete("record_complaints", decision="verify", complaint_received=True,
                  complaint_summary="Hộ có xe tải cho thuê, thu nhập cao hơn kê khai")
    assert case.open_steps() == ["recheck"]
    recheck = case.task("recheck")
    assert recheck.role == "culture"
    # opened Thu 26/11: 2 working days → Mon 30/11 17:00; the legal due date is unchanged
    assert recheck.due_at == datetime(2026, 11, 30, 17, 0, tzinfo=VN_TZ)
    assert dossier.due_at == datetime(2026, 12, 1, 17, 0, tzinfo=VN_TZ)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("recheck", decision=outcome)
    assert set(err.value.fields) == {"findings"}
    case.complete("recheck", decision=outcome, findings="Ban chỉ đạo rà soát phúc tra: xe tải đã bán từ tháng 8")
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == [kind]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_no_complaint_but_refusal_needs_its_reason(case):
    case.submit(form=FORM, at=THURSDAY)
    _posting_over(case)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("record_complaints", decision="propose_refuse", complaint_received=False)
    assert set(err.value.fields) == {"note"}
    case.complete("record_complaints", decision="propose_refuse", complaint_received=False,
                  note="Hộ đã chuyển khẩu khỏi xã trong thời gian niêm yết")
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]


def test_leader_returns_then_review_and_posting_run_again(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    _posting_over(case)
    case.complete("record_complaints", **NO_COMPLAINT)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Kiểm tra lại số nhân khẩu thực tế")
    assert case.open_steps() == ["review"]
    # reviewed again Thu 26/11 08:30: posted again 3 working days, Fri 27 (1), Mon 30 (2), Tue 1/12 (3)
    case.at(datetime(2026, 11, 26, 8, 30, tzinfo=VN_TZ))
    case.complete("review", **REVIEW)
    assert _posting_timer(case) == datetime(2026, 12, 1, 17, 0, tzinfo=VN_TZ)
    # Mon 30/11 17:00 is one working day before the legal due date: only the warning fires
    assert case.at(datetime(2026, 11, 30, 17, 0, 5, tzinfo=VN_TZ)) == 1
    assert case.open_steps() == []
    assert [p["due_at"] for op, p in case.calls if op == "notify.deadline_warning"] == ["2026-12-01T17:00:00+07:00"]
    # Tue 1/12 17:00: the posting ends and the dossier falls due at the same moment
    assert case.at(datetime(2026, 12, 1, 17, 0, 5, tzinfo=VN_TZ)) == 2
    assert [p["roles"] for op, p in case.calls if op == "notify.overdue_escalation"] == ["leader"]
    assert case.open_steps() == ["record_complaints"]
    assert case.task("record_complaints").due_at == dossier.due_at
    case.complete("record_complaints", **NO_COMPLAINT)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_withdrawal_during_posting_cancels_the_posting_timer(case):
    case.submit(form=FORM, at=THURSDAY)
    _to_posting(case)
    assert _posting_timer(case) == POSTING_ENDS
    services.withdraw_dossier(case.session, case.dossier.code, actor=case.officer("onestop"),
                              reason="Hộ đã có việc làm ổn định")
    assert case.status == "withdrawal_requested"
    assert case.dossier.status_code == 7
    assert case.finished
    assert _posting_timer(case) is None
    assert case.at(datetime(2026, 11, 25, 17, 0, 5, tzinfo=VN_TZ)) == 0
    assert case.open_steps() == []


def test_free_procedure_online_is_never_asked_to_pay(case):
    dossier = case.submit(form=FORM, at=THURSDAY, channel="online")
    assert dossier.terms["fee"]["kind"] == "free"
    assert services.fee_due(dossier.terms["fee"], dossier.form) == 0
    _posting_over(case)
    case.complete("record_complaints", **NO_COMPLAINT)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # no payment_requested step
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=0)
    assert case.status == "returned"
    assert "payment_requested" not in [p.get("template") for op, p in case.calls]


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={**FORM, "request": "rich", "members": 0}, at=THURSDAY)
    assert set(err.value.fields) == {"form.request", "form.members"}
