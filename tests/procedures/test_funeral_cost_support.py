"""Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội (1.001731) through the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "funeral_cost_support"
FORM = {"deceased_name": "Nguyễn Thị Lan", "deceased_id_number": "042150000123", "date_of_death": "2026-11-15",
        "beneficiary_group": "monthly_allowance", "organiser_relation": "Con gái"}
# Thu 19/11/2026 10:00: 3 working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
# Decree 20/2021 art. 11 as amended by Decree 76/2024: 20 x 500,000 VND.
APPRAISE = {"decision": "propose_approve", "support_amount_vnd": 10_000_000}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def test_due_date_is_three_working_days_over_weekend_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3) → Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert dossier.terms["decides"] == "Chủ tịch UBND xã"
    assert dossier.terms["rule"] is None
    assert case.open_steps() == ["receive"]
    assert case.task("receive").role == "onestop"


def test_dossier_received_before_decree_147_keeps_five_working_days(case):
    """Before 1/7/2025: commune 2 + district 3 working days, the district Chairman deciding."""
    before = case.submit(form=FORM, at=datetime(2025, 6, 30, 9, 0, tzinfo=VN_TZ))  # Monday
    # Tue 1/7 (1), Wed 2 (2), Thu 3 (3), Fri 4 (4), Mon 7 (5) → Mon 7/7/2025 17:00
    assert before.due_at == datetime(2025, 7, 7, 17, 0, tzinfo=VN_TZ)
    assert before.terms["legal_time"] == {"value": 5, "unit": "working_days"}
    assert before.terms["decides"] == "Chủ tịch UBND cấp huyện (trước 1/7/2025)"
    after = case.submit(form=FORM, at=datetime(2025, 7, 1, 9, 0, tzinfo=VN_TZ))  # Tuesday
    # Wed 2 (1), Thu 3 (2), Fri 4 (3) → Fri 4/7/2025 17:00
    assert after.due_at == datetime(2025, 7, 4, 17, 0, tzinfo=VN_TZ)
    assert after.terms["decides"] == "Chủ tịch UBND xã"


def test_happy_path_at_the_counter(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) in case.calls
    appraise = case.task("appraise")
    assert appraise.role == "culture"
    # the officer's 2 working days: Fri 20 (1), Mon 23 (2)
    assert appraise.due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve")
    assert set(err.value.fields) == {"support_amount_vnd"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve", support_amount_vnd=9_000_000)  # below 20 x 500,000
    assert set(err.value.fields) == {"support_amount_vnd"}
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [{"dossier_code": dossier.code,
                                                                              "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished


def test_refusal_proposed_signed_and_handed_back(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert set(err.value.fields) == {"note"}
    case.complete("appraise", decision="propose_refuse",
                  note="Người mất đã được hưởng chế độ mai táng theo Luật Bảo hiểm xã hội")
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Đối chiếu lại trích lục khai tử")
    assert case.open_steps() == ["appraise"]
    assert case.task("appraise").role == "culture"
    # a province may pay more than the national minimum
    case.complete("appraise", decision="propose_approve", support_amount_vnd=12_000_000)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["result"]


def test_free_procedure_online_is_never_asked_to_pay(case):
    dossier = case.submit(form=FORM, at=THURSDAY, channel="online")
    assert dossier.terms["fee"]["kind"] == "free"
    assert services.fee_due(dossier.terms["fee"], dossier.form) == 0
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # no payment_requested step
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=0)
    assert case.status == "returned"


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={**FORM, "deceased_id_number": "12345", "date_of_death": "15/11/2026"}, at=THURSDAY)
    assert set(err.value.fields) == {"form.deceased_id_number", "form.date_of_death"}
