"""Every procedure through every path of the shared one-stop lifecycle.

Each procedure.yaml has an `example`: a valid dossier and the work that leads to an approval
proposal. These tests take every procedure through the happy path, supplement then complete,
refusal at receipt, leader return then approve, withdrawal, late with apology (and the refused
second apology), postal return and online payment, wherever the procedure allows them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from engine import services
from engine.calendar import VN_TZ, to_vn
from engine.models import Timer
from tests.procedures.harness import CaseDriver

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
DEFINITIONS = {p.parent.name: yaml.safe_load(p.read_text(encoding="utf-8"))
               for p in sorted(PROCESSES.glob("*/procedure.yaml"))}
CODES = sorted(DEFINITIONS)
MONDAY = datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ)
POST = {"method": "post", "address": "Số 12, thôn Đông, xã An Hòa Thịnh, Hà Tĩnh"}


def _with(feature: str) -> list[str]:
    def has(code: str) -> bool:
        d = DEFINITIONS[code]
        if feature == "post":
            return "post" in (d.get("delivery") or [])
        if feature == "online_fee":
            return d.get("online_level") == "full" and (d.get("fee") or {}).get("kind", "free") != "free"
        raise AssertionError(feature)

    return [code for code in CODES if has(code)]


@pytest.fixture
def driver(session, request):
    code = request.param
    case = CaseDriver(session, code)
    case.example = DEFINITIONS[code]["example"]  # type: ignore[attr-defined]
    return case


def _submit(case: CaseDriver, **kw: Any) -> None:
    case.submit(form=case.example["form"], at=MONDAY, **kw)  # type: ignore[attr-defined]


def _work(case: CaseDriver) -> None:
    """Do the procedure's own work up to the approval proposal, as its example says."""
    for step in case.example["work"]:  # type: ignore[attr-defined]
        if "task" in step:
            case.complete(step["task"], **step["data"])
        elif "message" in step:
            case.message(step["message"], step.get("payload"))
        else:
            _let_timer_fire(case)
    assert case.open_steps() == ["approve"], case.open_steps()


def _let_timer_fire(case: CaseDriver) -> None:
    """Move the clock past the next timers until the process has a task for someone again."""
    for _ in range(5):
        run_at = case.session.scalar(select(func.min(Timer.run_at)).where(Timer.dossier_id == case.dossier.id))
        assert run_at is not None, "the process waits for no timer"
        case.at(run_at + timedelta(seconds=1))
        if case.open_steps():
            return
    raise AssertionError("no task appeared after the timers fired")


def _hand_back(case: CaseDriver, step: str = "hand_back", *, paid_online: bool = False) -> None:
    fee = 0 if paid_online else int(case.dossier.terms.get("fee_due") or 0)
    case.complete(step, decision="delivered", fee_collected=fee, receiver_name="Phạm Thị Dung")
    assert case.status == "returned"
    assert case.finished


@pytest.mark.parametrize("driver", CODES, indirect=True)
def test_happy_path(driver):
    _submit(driver)
    driver.complete("receive", decision="accept")
    assert driver.status == "processing"
    _work(driver)
    driver.complete("approve", decision="approve")
    assert "documents.sign_result" in driver.operations()
    _hand_back(driver)


@pytest.mark.parametrize("driver", CODES, indirect=True)
def test_supplement_then_complete(driver):
    _submit(driver)
    driver.complete("receive", decision="supplement", note="Thiếu bản chụp giấy tờ tùy thân")
    assert driver.status == "supplement_requested"
    assert driver.dossier.clock_paused_at is not None
    driver.at(MONDAY + timedelta(days=2))
    driver.message("supplement_received", {"documents": ["cccd.pdf"]})
    assert driver.dossier.clock_paused_at is None
    with pytest.raises(services.InvalidDataError):
        driver.complete("receive", decision="supplement", note="Thiếu thêm giấy tờ")
    driver.complete("receive", decision="accept")
    _work(driver)
    driver.complete("approve", decision="approve")
    _hand_back(driver)


@pytest.mark.parametrize("driver", CODES, indirect=True)
def test_refused_at_receipt(driver):
    _submit(driver)
    driver.complete("receive", decision="refuse", note="Không thuộc thẩm quyền giải quyết của xã")
    assert driver.status == "not_accepted"
    assert driver.finished


@pytest.mark.parametrize("driver", CODES, indirect=True)
def test_leader_return_then_approve(driver):
    _submit(driver)
    driver.complete("receive", decision="accept")
    _work(driver)
    driver.complete("approve", decision="return", reason="Cần kiểm tra lại thông tin")
    assert "approve" not in driver.open_steps()
    _work(driver)
    driver.complete("approve", decision="approve")
    _hand_back(driver)


@pytest.mark.parametrize("driver", CODES, indirect=True)
def test_withdrawal_during_processing(driver):
    _submit(driver)
    driver.complete("receive", decision="accept")
    services.withdraw_dossier(driver.session, driver.dossier.code, actor=services.SYSTEM_ACTOR,
                              reason="Người nộp không còn nhu cầu")
    assert driver.status == "withdrawal_requested"
    assert driver.finished
    assert driver.open_steps() == []


@pytest.mark.parametrize("driver", CODES, indirect=True)
def test_late_with_apology_once(driver):
    _submit(driver)
    driver.complete("receive", decision="accept")
    services.request_apology(driver.session, driver.dossier.code, actor=services.SYSTEM_ACTOR,
                             reason="Chờ kết quả xác minh từ cơ quan khác")
    cal = services.calendar_for(driver.session)
    new_day = cal.next_working_day(to_vn(driver.dossier.due_at).date())
    driver.complete("sign_apology", decision="approve", new_due_date=new_day.isoformat(),
                    reason="Chờ kết quả xác minh")
    assert driver.dossier.due_at == datetime.combine(new_day, cal.afternoon[1], VN_TZ)
    with pytest.raises(services.ConflictError):
        services.request_apology(driver.session, driver.dossier.code, actor=services.SYSTEM_ACTOR,
                                 reason="Lần thứ hai")
    _work(driver)
    driver.complete("approve", decision="approve")
    _hand_back(driver)


@pytest.mark.parametrize("driver", _with("post"), indirect=True)
def test_postal_return(driver):
    _submit(driver, delivery=POST)
    driver.complete("receive", decision="accept")
    _work(driver)
    driver.complete("approve", decision="approve")
    assert "postal.send_result" in driver.operations()
    services.record_postal_event(driver.session, driver.dossier.code, actor=services.SYSTEM_ACTOR, event="returned")
    _hand_back(driver, "hand_back_returned")


@pytest.mark.parametrize("driver", _with("online_fee"), indirect=True)
def test_online_payment(driver):
    _submit(driver, channel="online")
    fee = int(driver.dossier.terms["fee_due"])
    assert fee > 0
    driver.complete("receive", decision="accept")
    _work(driver)
    driver.complete("approve", decision="approve")
    assert driver.status == "payment_requested"
    services.record_payment(driver.session, driver.dossier.code, actor=services.SYSTEM_ACTOR, amount=fee,
                            reference=f"PAY-{driver.dossier.code}")
    _hand_back(driver, paid_online=True)


def test_every_procedure_has_the_lifecycle_paths_it_allows():
    assert len(CODES) >= 13
    assert _with("post")
    assert _with("online_fee")
