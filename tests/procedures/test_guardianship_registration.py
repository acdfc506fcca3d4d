"""Đăng ký giám hộ (1.004837) through its own paths inside the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "guardianship_registration"
FORM = {
    "guardianship_kind": "statutory", "ward_full_name": "Lê Minh An", "ward_birth_date": "2015-05-10",
    "guardian_full_name": "Phạm Thị Dung", "guardian_id_number": "001199000111", "relationship": "Bà nội",
    "residence": "Thôn Đông, xã An Hòa Thịnh",
}
# Thu 19/11/2026 10:00: 3 working days skip the weekend and Tue 24/11 (Ngày Văn hóa Việt Nam).
THURSDAY = datetime(2026, 11, 19, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
APPRAISE = {"decision": "propose_approve", "guardian_eligible": True}
REGISTER = {"decision": "propose_approve", "guardian_present": True, "register_signed": True,
            "register_number": "03/2026"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _fee_due(case: CaseDriver) -> int:
    wf = services.load_workflow(case.session, case.dossier)
    return next(t.data["fee_due"] for t in wf.get_tasks() if "fee_due" in t.data)


def test_due_date_is_three_working_days_over_weekend_and_holiday(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    # Civil Status Law art. 21(2): 3 working days, the day of receipt not counted:
    # Fri 20 (1), Mon 23 (2), Tue 24 holiday, Wed 25 (3) → Wed 25/11 17:00
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert case.open_steps() == ["receive"]


def test_happy_path_guardian_signs_the_register(case):
    dossier = case.submit(form=FORM, at=THURSDAY)
    assert case.task("receive").role == "onestop"
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.task("appraise").role == "justice"
    # appraisal: 2 working days from Thu 19/11 10:00 → Mon 23/11 17:00
    assert case.task("appraise").due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)
    case.complete("appraise", **APPRAISE)
    assert case.open_steps() == ["register"]
    assert case.task("register").role == "justice"
    case.complete("register", **REGISTER)
    assert case.task("approve").role == "leader"
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=0, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished


def test_register_needs_the_guardian_in_person(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("register", **{**REGISTER, "guardian_present": False})
    assert "guardian_present" in err.value.fields
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("register", decision="propose_approve", guardian_present=True)
    assert "register_signed" in err.value.fields


def test_refusal_after_appraisal_skips_the_register(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("appraise", decision="propose_refuse")
    assert "note" in err.value.fields
    case.complete("appraise", decision="propose_refuse",
                  note="Có hai người cùng đủ điều kiện giám hộ đương nhiên, thiếu văn bản thỏa thuận")
    assert case.open_steps() == ["approve"]
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"
    assert case.finished


def test_refusal_when_the_guardian_does_not_come_to_sign(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("register", decision="propose_refuse", guardian_present=False)
    assert "note" in err.value.fields
    case.complete("register", decision="propose_refuse", guardian_present=False,
                  note="Người giám hộ không đến ký Sổ hộ tịch")
    case.complete("approve", **APPROVE)
    assert [p["kind"] for op, p in case.calls if op == "documents.sign_result"] == ["refusal"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=THURSDAY)
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("register", **REGISTER)
    with pytest.raises(services.InvalidDataError):
        case.complete("approve", decision="return")  # a return needs its reason
    case.complete("approve", decision="return", reason="Kiểm tra lại quan hệ với người được giám hộ")
    assert case.open_steps() == ["appraise"]
    case.complete("appraise", **APPRAISE)
    case.complete("register", **REGISTER)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered")
    assert case.status == "returned"


def test_guardianship_registration_is_free(case):
    case.submit(form={**FORM, "guardianship_kind": "appointed", "relationship": "Cô ruột"}, at=THURSDAY,
                channel="online")
    # Civil Status Law art. 11(1)(b): no fee
    assert _fee_due(case) == 0
    case.complete("receive", **ACCEPT)
    case.complete("appraise", **APPRAISE)
    case.complete("register", **REGISTER)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # nothing to pay online
    case.complete("hand_back", decision="delivered", fee_collected=_fee_due(case))
    assert case.status == "returned"


def test_citizen_form_is_validated(case):
    with pytest.raises(services.InvalidDataError) as err:
        case.submit(form={**FORM, "guardianship_kind": "court"}, at=THURSDAY)
    assert "form.guardianship_kind" in err.value.fields
