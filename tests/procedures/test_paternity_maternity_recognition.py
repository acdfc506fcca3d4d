"""Đăng ký nhận cha, mẹ, con (1.001022) through its paths in the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "paternity_maternity_recognition"
FORM = {
    "recognition_kind": "father_recognizes_child",
    "requester_full_name": "Nguyễn Văn Bình",
    "other_party_full_name": "Nguyễn Minh An",
    "other_party_birth_date": "2020-03-15",
    "residence": "Thôn Đông, xã An Hòa Thịnh, Hà Tĩnh",
    "proof_kind": "medical_or_dna",
    "reason": "Cha mẹ chung sống không đăng ký kết hôn",
}
# Thu 19/11/2026 10:00: 3 working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "no_dispute": True, "parties_present": True}
APPROVE = {"decision": "approve"}
FEE = 20000  # Hà Tĩnh's rate (NQ 253/2020/NQ-HĐND), the catalogue's example


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def test_due_date_is_three_working_days_over_weekend_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3) → Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]


def test_happy_path_at_the_counter_with_the_provincial_fee(case):
    case.submit(form=FORM, at=THURSDAY)
    assert services.fee_due(case.dossier.terms["fee"], case.dossier.form) == FEE
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": case.dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    appraise = case.task("appraise")
    assert appraise.role == "justice"
    # its own 2 working days: Fri 20, Mon 23 → Mon 23/11 17:00
    assert appraise.due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": case.dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    # partial online: the fee is collected at the counter on hand-back, not paid online
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=FEE, receiver_name="Nguyễn Văn Bình")
    assert case.status == "returned"
    assert case.finished
    assert case.dossier.status_code == 10


def test_online_submission_still_pays_at_the_counter(case):
    # online_level partial: the parties come in person (Civil Status Law art. 25), and pay there
    case.submit(form=FORM, at=THURSDAY, channel="online")
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=FEE)
    assert case.status == "returned"


def test_result_is_not_sent_by_post(case):
    # the parties sign the civil-status book in person: counter only
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form=FORM, at=THURSDAY, delivery={"method": "post", "address": "Số 5, thôn Đông"})
    assert "delivery.method" in err.value.fields


def test_approval_needs_an_undisputed_recognition_with_the_parties_present(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve")
    assert set(err.value.fields) == {"no_dispute", "parties_present"}
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve", no_dispute=False, parties_present=True)
    assert set(err.value.fields) == {"no_dispute"}
    assert case.open_steps() == ["appraise"]


def test_commitment_without_medical_proof_needs_two_witnesses(case):
    form = {**FORM, "proof_kind": "commitment_with_witnesses", "witnesses": ["Trần Văn Cường"]}
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form=form, at=THURSDAY)
    assert "form.witnesses" in err.value.fields
    case.submit(form={**form, "witnesses": ["Trần Văn Cường", "Lê Thị Hoa"]}, at=THURSDAY)
    assert case.open_steps() == ["receive"]


def test_refusal_proposed_signed_and_handed_back(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse", note="Có tranh chấp về quan hệ cha con")
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Bổ sung ý kiến của người con đã thành niên")
    assert case.open_steps() == ["appraise"]
    assert case.task("appraise").role == "justice"
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_verification_adds_five_working_days(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="verify")
    # Civil Status Law art. 25(1): 3 + 5 working days. From Wed 25/11: Thu 26 (1), Fri 27 (2),
    # Mon 30 (3), Tue 1/12 (4), Wed 2/12 (5) → Wed 2/12 17:00
    assert dossier.due_at == datetime(2026, 12, 2, 17, 0, tzinfo=VN_TZ)
    verify = case.task("verify")
    assert verify.role == "justice"
    assert verify.due_at == dossier.due_at
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify", decision="propose_approve", findings="Người làm chứng xác nhận")
    assert "parties_present" in err.value.fields
    case.complete("verify", decision="propose_approve", findings="Hai người làm chứng xác nhận quan hệ cha con",
                  parties_present=True)
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered", fee_collected=FEE)
    assert case.status == "returned"


def test_verification_ending_in_refusal(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", decision="verify")
    case.complete("verify", decision="propose_refuse", findings="Không xác minh được quan hệ cha con")
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
