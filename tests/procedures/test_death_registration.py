"""Đăng ký khai tử (1.000656) through its paths in the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine import services
from engine.calendar import VN_TZ
from engine.models import AuditEvent
from tests.procedures.harness import CaseDriver

CODE = "death_registration"
FORM = {
    "deceased_full_name": "Nguyễn Văn Hùng",
    "deceased_id_number": "042048000321",
    "date_of_death": "2026-11-15",
    "place_of_death": "Thôn Đông, xã An Hòa Thịnh, Hà Tĩnh",
    "last_residence": "Thôn Đông, xã An Hòa Thịnh, Hà Tĩnh",
    "requester_relationship": "Con",
}
# Thu 19/11/2026 10:00, before the 15:00 cut-off: due the same day at 17:00.
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "death_proof": "death_notice"}
VERIFY = {"decision": "verify", "note": "Giấy báo tử do trạm y tế cấp, cần xác minh nơi chết"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


@pytest.mark.parametrize(("received", "due"), [
    (datetime(2026, 11, 19, 10, 0), datetime(2026, 11, 19, 17, 0)),
    # Fri 20/11 15:30, after 15:00: the next working day Mon 23/11 → 17:00
    (datetime(2026, 11, 20, 15, 30), datetime(2026, 11, 23, 17, 0)),
    # Mon 23/11 16:10: Tue 24/11 is a holiday → Wed 25/11 17:00
    (datetime(2026, 11, 23, 16, 10), datetime(2026, 11, 25, 17, 0)),
])
def test_same_day_with_the_15h_cut_off(case, received, due):
    dossier = case.submit(form=FORM, at=received.replace(tzinfo=VN_TZ))
    assert dossier.due_at == due.replace(tzinfo=VN_TZ)


def test_happy_path_at_the_counter(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    assert case.task("receive").role == "onestop"
    case.complete("receive", **ACCEPT)
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.task("appraise").role == "justice"
    assert case.task("appraise").due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_approve")  # which death notice was checked
    assert "death_proof" in err.value.fields
    case.complete("appraise", **APPRAISE)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": dossier.code, "kind": "result"}]
    assert [p["template"] for op, p in case.calls if op == "notify.status"] == ["accepted", "processed"]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Nguyễn Văn Nam")
    assert case.status == "returned"
    assert case.dossier.due_at == datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ)  # no extension
    assert case.finished


def test_refusal_proposed_signed_and_handed_back(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse", note="Việc khai tử đã được đăng ký tại xã khác")
    case.complete("approve", **APPROVE)
    assert [p for op, p in case.calls if op == "documents.sign_result"] == [
        {"dossier_code": dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", decision="return", reason="Kiểm tra lại ngày chết")
    assert case.open_steps() == ["appraise"]
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]


def test_verification_adds_three_working_days(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="verify")  # says what must be verified
    assert "note" in err.value.fields
    case.complete("appraise", **VERIFY)
    # due Thu 19/11 17:00 + 3 working days: Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3)
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    verify = case.task("verify")
    assert verify.role == "justice"
    assert verify.due_at == dossier.due_at
    case.session.commit()  # the audit log is written on commit (a savepoint in tests)
    changes = case.session.scalars(select(AuditEvent).where(
        AuditEvent.dossier_id == dossier.id, AuditEvent.action == "due_date_changed")).all()
    assert [(datetime.fromisoformat(c.data["from"]), datetime.fromisoformat(c.data["to"]), c.data["reason"])
            for c in changes] == [(datetime(2026, 11, 19, 17, 0, tzinfo=VN_TZ), dossier.due_at, "verification")]
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify", decision="propose_approve")
    assert "findings" in err.value.fields
    case.complete("verify", decision="propose_approve", findings="Trạm y tế xã xác nhận việc chết tại nhà")
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_verification_after_the_cut_off_then_refusal(case):
    # Fri 20/11 16:00 → due Mon 23/11 17:00; + 3 working days: Wed 25 (1, the 24th a holiday),
    # Thu 26 (2), Fri 27 (3) → Fri 27/11 17:00
    dossier = case.submit(form=FORM, at=datetime(2026, 11, 20, 16, 0, tzinfo=VN_TZ))
    assert dossier.due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **VERIFY)
    assert dossier.due_at == datetime(2026, 11, 27, 17, 0, tzinfo=VN_TZ)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("verify", decision="propose_refuse", findings="Không xác định được nơi chết")
    assert "note" in err.value.fields
    case.complete("verify", decision="propose_refuse", findings="Không xác định được nơi chết",
                  note="Người chết không cư trú cuối cùng tại xã")
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_online_registration_is_free(case):
    dossier = case.submit(form=FORM, at=THURSDAY, channel="online")
    assert services.fee_due(dossier.procedure.catalogue["fee"], dossier.form) == 0
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # full online, nothing to pay: no payment request
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={k: v for k, v in FORM.items() if k != "date_of_death"}, at=THURSDAY)
    assert err.value.fields == {"form.date_of_death": ["required"]}



def test_second_verification_after_a_leader_return_does_not_extend_again(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **VERIFY)
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    case.complete("verify", decision="propose_approve", findings="Trạm y tế xã xác nhận việc chết")
    case.complete("approve", decision="return", reason="Xác minh lại nơi chết")
    case.complete("appraise", **VERIFY)
    # the law allows the 3 working days once: still Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
