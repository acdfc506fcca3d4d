"""Chứng thực bản sao từ bản chính (2.000815) through its own paths inside the one-stop lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine import services
from engine.calendar import VN_TZ
from tests.procedures.harness import CaseDriver

CODE = "copy_certification"
FORM = {"document_name": "Bằng tốt nghiệp trung học phổ thông", "issued_by": "Sở Giáo dục và Đào tạo Hà Tĩnh",
        "pages": 1, "copies": 2}
BULK_FORM = {"document_name": "Hồ sơ dự án đầu tư", "issued_by": "UBND tỉnh Hà Tĩnh", "pages": 500, "copies": 2}
FRIDAY = datetime(2026, 11, 20, 10, 0, tzinfo=VN_TZ)
ACCEPT = {"decision": "accept"}
CERTIFY = {"decision": "propose_approve", "original_checked": True, "pages_counted": 1, "copies_certified": 2,
           "register_number": "120/2026/SCT/BS"}
APPROVE = {"decision": "approve"}


@pytest.fixture
def case(session):
    return CaseDriver(session, CODE)


def _fee_due(case: CaseDriver) -> int:
    wf = services.load_workflow(case.session, case.dossier)
    return next(t.data["fee_due"] for t in wf.get_tasks() if "fee_due" in t.data)


def test_same_day_before_15h(case):
    dossier = case.submit(form=FORM, at=FRIDAY)
    # Decree 23/2015 art. 7(1): received Fri 20/11 10:00 → the same day, 17:00
    assert dossier.due_at == datetime(2026, 11, 20, 17, 0, tzinfo=VN_TZ)


def test_after_15h_due_next_working_day(case):
    dossier = case.submit(form=FORM, at=datetime(2026, 11, 20, 15, 30, tzinfo=VN_TZ))
    # Decree 23/2015 art. 7(1): received Fri 20/11 15:30, after 15:00 → next working day, over the
    # weekend → Mon 23/11 17:00
    assert dossier.due_at == datetime(2026, 11, 23, 17, 0, tzinfo=VN_TZ)


def test_happy_path_at_the_counter(case):
    case.submit(form=FORM, at=FRIDAY)
    assert _fee_due(case) == 4000  # 1 page × 2,000, 2 copies
    assert case.task("receive").role == "onestop"
    case.complete("receive", **ACCEPT)
    assert case.status == "processing"
    assert ("notify.status", {"dossier_code": case.dossier.code, "template": "accepted", "to": "0903333444"}) \
        in case.calls
    assert case.open_steps() == ["certify"]  # 1 page × 2 copies: not a bulk request
    assert case.task("certify").role == "justice"
    assert case.task("certify").due_at == datetime(2026, 11, 20, 17, 0, tzinfo=VN_TZ)
    case.complete("certify", **CERTIFY)
    assert case.task("approve").role == "leader"  # Chairman or Vice-Chairman signs (art. 5)
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "result"}]
    assert case.status == "processed"
    assert ("notify.status", "processed") in [(op, p.get("template")) for op, p in case.calls]
    assert case.task("hand_back").role == "onestop"
    case.complete("hand_back", decision="delivered", fee_collected=_fee_due(case), receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.dossier.status_code == 10
    assert case.finished


def test_approval_needs_the_original_checked(case):
    case.submit(form=FORM, at=FRIDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("certify", **{**CERTIFY, "original_checked": False})
    assert "original_checked" in err.value.fields
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("certify", decision="propose_approve", original_checked=True)
    assert "register_number" in err.value.fields


def test_refusal_after_appraisal(case):
    case.submit(form=FORM, at=FRIDAY)
    case.complete("receive", **ACCEPT)
    with pytest.raises(services.InvalidDataError) as err:
        case.complete("certify", decision="propose_refuse", note="Bản chính bị tẩy xoá")
    assert "refusal_ground" in err.value.fields  # Decree 23/2015 art. 22 grounds
    case.complete("certify", decision="propose_refuse", refusal_ground="altered",
                  note="Bản chính bị tẩy xoá, sửa chữa ngày cấp")
    case.complete("approve", **APPROVE)
    signed = [p for op, p in case.calls if op == "documents.sign_result"]
    assert signed == [{"dossier_code": case.dossier.code, "kind": "refusal"}]
    case.complete("hand_back", decision="delivered", fee_collected=0)
    assert case.status == "returned"
    assert case.finished


def test_leader_returns_then_approves(case):
    case.submit(form=FORM, at=FRIDAY)
    case.complete("receive", **ACCEPT)
    case.complete("certify", **CERTIFY)
    case.complete("approve", decision="return", reason="Thiếu dấu giáp lai trên bản sao")
    assert case.open_steps() == ["certify"]
    case.complete("certify", **CERTIFY)
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=4000)
    assert case.status == "returned"


def test_bulk_request_adds_two_working_days(case):
    dossier = case.submit(form=BULK_FORM, at=FRIDAY)
    assert dossier.due_at == datetime(2026, 11, 20, 17, 0, tzinfo=VN_TZ)
    case.complete("receive", **ACCEPT)
    # 500 pages × 2 copies > 50 pages: bulk (Decree 23/2015 art. 7(2), up to 2 more working days)
    # from the same-day due Fri 20/11: Mon 23 (1), Tue 24 holiday, Wed 25 (2) → Wed 25/11 17:00
    assert case.open_steps() == ["certify_bulk"]
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
    assert case.task("certify_bulk").role == "justice"
    assert case.task("certify_bulk").due_at == dossier.due_at
    case.complete("certify_bulk", **{**CERTIFY, "pages_counted": 500})
    case.complete("approve", **APPROVE)
    case.complete("hand_back", decision="delivered", fee_collected=400000)
    assert case.status == "returned"
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)


def test_bulk_request_received_after_15h(case):
    dossier = case.submit(form=BULK_FORM, at=datetime(2026, 11, 20, 15, 30, tzinfo=VN_TZ))
    case.complete("receive", **ACCEPT)
    # due Mon 23/11 (after 15:00), + 2 working days: Tue 24 holiday, Wed 25 (1), Thu 26 (2)
    assert dossier.due_at == datetime(2026, 11, 26, 17, 0, tzinfo=VN_TZ)


@pytest.mark.parametrize(("pages", "copies", "step"), [
    (50, 1, "certify"),
    (51, 1, "certify_bulk"),
    (30, 2, "certify_bulk"),
    (10, 5, "certify"),
])
def test_bulk_threshold_counts_pages_to_certify(case, pages, copies, step):
    case.submit(form={**FORM, "pages": pages, "copies": copies}, at=FRIDAY)
    case.complete("receive", **ACCEPT)
    assert case.open_steps() == [step]


@pytest.mark.parametrize(("pages", "copies", "fee"), [
    (1, 1, 2000),        # 1 page: 2,000
    (5, 1, 7000),        # 2 × 2,000 + 3 × 1,000
    (5, 3, 21000),       # per copy: 7,000 × 3
    (500, 1, 200000),    # 2 × 2,000 + 498 × 1,000 = 502,000 → capped at 200,000 per copy
    (500, 2, 400000),
])
def test_fee_per_page_with_cap(case, pages, copies, fee):
    # Circular 226/2016: 2,000 VND/page for pages 1–2, 1,000 from page 3, max 200,000 per copy
    case.submit(form={**FORM, "pages": pages, "copies": copies}, at=FRIDAY)
    assert _fee_due(case) == fee
    case.complete("receive", **ACCEPT)
    step = case.open_steps()[0]
    case.complete(step, **{**CERTIFY, "pages_counted": pages, "copies_certified": copies})
    case.complete("approve", **APPROVE)
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=_fee_due(case))
    assert case.status == "returned"


def test_online_submission_pays_at_the_counter(case):
    # partial online service: the original is shown at the office, the fee is collected there
    case.submit(form={**FORM, "pages": 5, "copies": 1}, at=FRIDAY, channel="online")
    case.complete("receive", **ACCEPT)
    case.complete("certify", **CERTIFY)
    case.complete("approve", **APPROVE)
    assert case.status == "processed"  # no payment_requested
    assert case.open_steps() == ["hand_back"]
    case.complete("hand_back", decision="delivered", fee_collected=_fee_due(case))
    assert _fee_due(case) == 7000
    assert case.status == "returned"


def test_bulk_extension_applies_once_after_a_leader_return(case):
    dossier = case.submit(form=BULK_FORM, at=FRIDAY)
    case.complete("receive", **ACCEPT)
    case.complete("certify_bulk", **CERTIFY)
    case.complete("approve", decision="return", reason="Đếm lại số trang bản chính")
    assert case.open_steps() == ["certify_bulk"]
    assert dossier.due_at == datetime(2026, 11, 25, 17, 0, tzinfo=VN_TZ)
