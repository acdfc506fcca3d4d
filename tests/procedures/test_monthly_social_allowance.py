"""Trợ cấp xã hội hằng tháng (1.001776): review, public posting with its timer, complaints and their
verification, through the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine import services
from engine.calendar import VN_TZ
from engine.models import Timer
from tests.procedures.harness import CaseDriver

CODE = "monthly_social_allowance"
FORM = {"request_type": "start", "beneficiary_name": "Lê Thị Mai", "beneficiary_id_number": "042090001234",
        "date_of_birth": "2012-03-08", "beneficiary_group": "orphan_child", "residence": "Thôn Tây, xã An Hòa Thịnh"}
# Thu 19/11/2026 10:00: working days skip the weekends and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
# Decree 20/2021 art. 6: coefficient on the 500,000 VND standard (orphan child aged 4 or more: 1.5).
REVIEW = {"decision": "propose_approve", "coefficient": 1.5, "effective_month": "2026-12"}
NO_COMPLAINT = {"decision": "propose_approve", "complaint_received": False}
APPROVE = {"decision": "approve"}
REVIEWED_AT = datetime(2026, 11, 26, 9, 0, tzinfo=VN_TZ)  # Thursday
# Reviewed Thu 26/11: posted for 2 working days, Fri 27 (1), Mon 30 (2) → Mon 30/11 17:00.
POSTING_ENDS = datetime(2026, 11, 30, 17, 0, tzinfo=VN_TZ)
LEGAL_DUE = datetime(2026, 12, 8, 17, 0, tzinfo=VN_TZ)


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
    assert case.at(REVIEWED_AT) == 0
    case.complete("review", **REVIEW)


def _posting_over(case: CaseDriver) -> None:
    _to_posting(case)
    assert case.at(datetime(2026, 11, 30, 17, 0, 5, tzinfo=VN_TZ)) == 1


def test_due_date_is_twelve_working_days_over_weekends_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3), Thu 26 (4), Fri 27 (5), Mon 30 (6),
    # Tue 1/12 (7), Wed 2 (8), Thu 3 (9), Fri 4 (10), Mon 7 (11), Tue 8 (12) → Tue 8/12 17:00
    assert dossier.due_at == LEGAL_DUE
    assert dossier.terms["decides"] == "Chủ tịch UBND xã (Nghị định 147/2025 điều 5 khoản 1)"
    assert case.open_steps() == ["receive"]
    assert case.task("receive").role == "onestop"


def test_happy_path_posting_ends_without_complaint(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) in case.calls
    review = case.task("review")
    assert review.role == "culture"
    # Decree 20/2021 art. 8: 7 working days to review, Fri 20 … Tue 1/12 (7)
    assert review.due_at == datetime(2026, 12, 1, 17, 0, tzinfo=VN_TZ)
    assert case.at(REVIEWED_AT) == 0
    case.complete("review", **REVIEW)
    assert case.open_steps() == []
    assert _posting_timer(case) == POSTING_ENDS
    assert case.at(datetime(2026, 11, 28, 10, 0, tzinfo=VN_TZ)) == 0  # Saturday
    assert case.at(datetime(2026, 11, 30, 16, 59, tzinfo=VN_TZ)) == 0
    assert case.open_steps() == []
    assert case.at(datetime(2026, 11, 30, 17, 0, 5, tzinfo=VN_TZ)) == 1
    assert _posting_timer(case) is None
    assert case.open_steps() == ["record_complaints"]
    complaints = case.task("record_complaints")
    assert complaints.role == "culture"
    # opened after office hours on Mon 30/11: 1 working day counts from Tue 1/12 → Wed 2/12 17:00
    assert complaints.due_at == datetime(2026, 12, 2, 17, 0, tzinfo=VN_TZ)
    case.complete("record_complaints", **NO_COMPLAINT)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [{"dossier_code": dossier.code,
                                                                              "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Lê Văn Tâm")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished
    assert not {"notify.deadline_warning", "notify.overdue_escalation"} & set(case.operations())


def test_review_form_rules(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", decision="propose_approve", coefficient=1.2)  # not a Decree 20/2021 coefficient
    assert set(err.value.fields) == {"coefficient", "effective_month"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", **{**REVIEW, "effective_month": "12/2026"})
    assert set(err.value.fields) == {"effective_month"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("review", decision="propose_refuse")
    assert set(err.value.fields) == {"note"}


def test_not_eligible_is_refused_without_posting(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("review", decision="propose_refuse", note="Trẻ còn mẹ đủ khả năng nuôi dưỡng, không thuộc diện")
    assert _posting_timer(case) is None
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [{"dossier_code": dossier.code,
                                                                              "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


@pytest.mark.parametrize(("outcome", "kind"), [("propose_approve", "result"), ("propose_refuse", "refusal")])
def test_complaint_during_posting_is_verified_then_proposed(case, outcome, kind):
    dossier = case.submit(form=FORM, at=THURSDAY)
    _posting_over(case)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("record_complaints", decision="propose_approve", complaint_received=True,
                      complaint_summary="Người dân phản ánh cháu đang được họ hàng nuôi dưỡng")
    assert set(err.value.fields) == {"decision"}
    case.complete("record_complaints", decision="verify", complaint_received=True,
                  complaint_summary="Người dân phản ánh cháu đang được họ hàng nuôi dưỡng")
    assert case.open_steps() == ["verify_complaint"]
    verify = case.task("verify_complaint")
    assert verify.role == "culture"
    # 10 days would run to Thu 10/12; no extension in the reference: capped at the legal due date
    assert verify.due_at == LEGAL_DUE
    assert dossier.due_at == LEGAL_DUE
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify_complaint", decision=outcome)
    assert set(err.value.fields) == {"findings"}
    case.complete("verify_complaint", decision=outcome, findings="Xác minh tại thôn: cháu sống cùng bà ngoại 80 tuổi")
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == [kind]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_review_and_posting_run_again(case):
    case.submit(form=FORM, at=THURSDAY)
    _posting_over(case)
    case.complete("record_complaints", **NO_COMPLAINT)
    case.complete("approve", decision="return", reason="Kiểm tra lại người đang nuôi dưỡng trẻ")
    assert case.open_steps() == ["review"]
    # reviewed again Tue 1/12 08:00: posted 2 working days, Wed 2 (1), Thu 3 (2) → Thu 3/12 17:00
    assert case.at(datetime(2026, 12, 1, 8, 0, tzinfo=VN_TZ)) == 0
    case.complete("review", **{**REVIEW, "effective_month": "2027-01"})
    assert _posting_timer(case) == datetime(2026, 12, 3, 17, 0, tzinfo=VN_TZ)
    assert case.at(datetime(2026, 12, 3, 16, 0, tzinfo=VN_TZ)) == 0
    assert case.at(datetime(2026, 12, 3, 17, 0, 5, tzinfo=VN_TZ)) == 1
    case.complete("record_complaints", **NO_COMPLAINT)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_withdrawal_during_posting_cancels_the_posting_timer(case):
    case.submit(form=FORM, at=THURSDAY)
    _to_posting(case)
    assert _posting_timer(case) == POSTING_ENDS
    services.withdraw_dossier(case.session, case.dossier.code, actor=case.officer("onestop"),
                              reason="Gia đình tự nuôi dưỡng được")
    assert case.status == "withdrawal_requested"
    assert case.dossier.status_code == 7
    assert case.finished
    assert _posting_timer(case) is None
    assert case.at(datetime(2026, 11, 30, 17, 0, 5, tzinfo=VN_TZ)) == 0
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


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={**FORM, "request_type": "increase", "beneficiary_id_number": "0420"}, at=THURSDAY)
    assert set(err.value.fields) == {"form.request_type", "form.beneficiary_id_number"}
