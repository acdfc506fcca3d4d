"""The citizen's journey on a phone: register with the SMS code, submit a late birth registration
with a scan, answer the supplement request, pay on the provider's page, get the result by post.
And assisted submission: a volunteer types a dossier, the citizen's SMS code makes it theirs.

The officers' steps are done through the engine (their pages have their own browser test); the
sandboxes' pages send their signed callbacks to the live server over HTTP, as providers do.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from connectors import payment
from engine import clock, jobs, services
from engine.calendar import VN_TZ
from engine.db import transaction
from engine.models import Dossier, Task, User
from scripts.seed import CITIZEN
from tests.e2e.conftest import ARTIFACTS, PASSWORD, PHONE, Officer, text_of
from tests.e2e.test_officer_journey import _png

NEW_CITIZEN = {"id_number": "042301004321", "full_name": "Trần Thị Bích", "date_of_birth": "2001-03-09",
               "phone": "0987654321", "email": "bich.tran@example.vn", "password": "Bich@2026x"}


class Citizen(Officer):
    """A person on their phone (390×844, touch)."""

    def __init__(self, browser: Any, base: str, name: str):
        super().__init__(browser, base, name)
        self.context.close()
        self.context = browser.new_context(viewport=PHONE, locale="vi-VN", is_mobile=True, has_touch=True)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                     if r.status >= 400 and r.request.resource_type != "document" else None)

    def sms_code(self, phone: str) -> str:
        """The last code the SMS sandbox received for ``phone`` (read as any client would)."""
        messages = self.context.request.get(f"{self.base}/sandbox/sms/messages?to={phone}").json()
        codes = [m.group(1) for item in messages if (m := re.search(r"la ([0-9]{6})", item["text"]))]
        assert codes, f"no SMS code for {phone}"
        return codes[-1]

    def fits(self, label: str) -> None:
        """As an officer's page: no horizontal scrolling at 1366×768 nor on the phone; back to the phone."""
        super().fits(label)
        self.page.set_viewport_size(PHONE)

    def shot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}-phone.png"), full_page=True)
        overflow = self.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement"
                                      ".clientWidth")
        assert overflow <= 0, f"{label}: {overflow}px of horizontal scrolling on the phone"
        assert not self.errors, f"errors on {label}: {self.errors}"


def _complete(app: Any, code: str, step: str, data: dict[str, Any]) -> None:
    with transaction(app.extensions["motcua"].factory) as session:
        task = session.scalar(select(Task).join(Dossier).where(Dossier.code == code, Task.spec_name == step,
                                                               Task.state == "ready"))
        assert task is not None, f"{code} has no open {step}"
        user = session.scalar(select(User).where(User.unit_id == task.unit_id, User.role_rows.any(role=task.role)))
        services.complete_task(session, task.id, actor=services.Actor.of(user), data=data)
    ext = app.extensions["motcua"]
    jobs.drain(ext.factory, ext.registry, lease=ext.lease)  # notices and signing, as the worker would


def _drain(person: Officer) -> None:
    assert person.context.request.post(person.base + "/api/v1/test/drain").ok


def _status(app: Any, code: str) -> str:
    with transaction(app.extensions["motcua"].factory) as session:
        return str(session.scalar(select(Dossier.status).where(Dossier.code == code)))


def test_citizen_registers_submits_supplements_pays_and_receives_by_post(browser, live_server, tmp_path):
    clock.set_now(datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ))  # Monday morning
    app, base = live_server["app"], live_server["url"]
    citizen = Citizen(browser, base, "c1-citizen")

    # 1. Registration: a wrong field first (a message beside it), then the SMS code.
    citizen.goto("/portal/register")
    for name, value in NEW_CITIZEN.items():
        citizen.page.fill(f"#i-{name}", value)
    citizen.page.fill("#i-phone", "0212345678")  # not a mobile number
    citizen.page.click("#register-submit")
    assert "10 chữ số" in text_of(citizen.page, "#e-phone")
    citizen.shot("register-error")
    citizen.page.fill("#i-phone", NEW_CITIZEN["phone"])
    citizen.page.fill("#i-password", NEW_CITIZEN["password"])
    citizen.page.click("#register-submit")
    citizen.page.wait_for_url("**/portal/code")
    citizen.shot("code")
    citizen.page.fill("#i-otp", citizen.sms_code(NEW_CITIZEN["phone"]))
    citizen.page.click("#code-submit")
    citizen.page.wait_for_url("**/portal/dossiers")

    # 2. Find the procedure and submit a late birth registration with a scan, result by post.
    citizen.goto("/portal/")
    citizen.page.fill("#q", "khai sinh")
    citizen.page.click("#search")
    citizen.fits("catalogue")
    citizen.page.click("li[data-code='birth_registration'] h2 a")
    citizen.shot("procedure")
    citizen.page.click("#submit-online")
    citizen.page.select_option("#i-unit", "anhoathinh")
    for name, value in {"child_full_name": "Lê Minh Khôi", "birth_date": "2026-06-01",
                        "birth_place": "Trạm y tế xã An Hòa Thịnh", "mother_full_name": "Trần Thị Bích",
                        "requester_relationship": "Mẹ"}.items():
        citizen.page.fill(f"#f-{name}", value)
    citizen.page.select_option("#f-gender", "male")
    citizen.page.check("#f-late_registration")
    scan = tmp_path / "giay-chung-sinh.png"
    scan.write_bytes(_png())
    citizen.page.set_input_files("#i-attachments", str(scan))
    citizen.page.check("input[name=delivery][value=post]")
    citizen.page.fill("#i-delivery_address", "Thôn Đông, xã An Hòa Thịnh, Hà Tĩnh")
    citizen.page.click("#submit-dossier")  # the declaration is not ticked yet
    assert "cam đoan" in text_of(citizen.page, "#e-declaration")
    citizen.page.set_input_files("#i-attachments", str(scan))  # a refused form keeps no file
    citizen.page.check("#i-declaration")
    citizen.page.click("#submit-dossier")
    citizen.page.wait_for_url("**/portal/dossiers/*")
    code = text_of(citizen.page, "#dossier-code")
    citizen.page.click("#deadline summary")
    assert "ngày làm việc" in text_of(citizen.page, "#deadline")
    citizen.fits("submitted")
    citizen.page.click("#receipt-link")
    assert text_of(citizen.page, "#receipt-code") == code
    citizen.shot("receipt")

    # 3. The one-stop officer asks for a supplement; the citizen answers it from the phone.
    _complete(app, code, "receive", {"decision": "supplement", "note": "Bản chụp giấy chứng sinh bị mờ"})
    _drain(citizen)
    citizen.goto(f"/portal/dossiers/{code}")
    assert citizen.page.locator("#supplement").count() == 1
    citizen.page.set_input_files("#i-supplement-files", str(scan))
    citizen.page.fill("#i-note", "Gửi lại bản chụp rõ nét")
    citizen.shot("supplement")
    citizen.page.click("#send-supplement")
    assert "tính lại" in text_of(citizen.page, ".flash.ok")
    _drain(citizen)

    # 4. Accepted, appraised, approved: the late registration's fee is paid on the provider's page.
    _complete(app, code, "receive", {"decision": "accept"})
    _complete(app, code, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    citizen.goto(f"/portal/dossiers/{code}")  # the draft result is checked before the leader signs
    assert "Lê Minh Khôi" in text_of(citizen.page, "#draft")
    citizen.shot("draft")
    citizen.page.click("#draft-confirm")
    assert "xác nhận" in text_of(citizen.page, ".flash.ok")
    _complete(app, code, "approve", {"decision": "approve"})
    _drain(citizen)
    citizen.goto(f"/portal/dossiers/{code}")
    assert "10.000" in text_of(citizen.page, "#payment")
    citizen.shot("payment-due")
    citizen.page.click("#pay")
    citizen.page.wait_for_url("**/sandbox/payment/*")
    assert "10.000" in text_of(citizen.page, "[data-testid=amount]")
    citizen.shot("provider-page")
    citizen.page.click("button[value=paid]")
    citizen.page.wait_for_url(f"**/portal/dossiers/{code}?payment=paid&callback=200")
    _drain(citizen)  # the result goes to the post
    # the day's reconciliation finds the provider's books and ours in agreement
    ext = app.extensions["motcua"]
    assert payment.reconcile(ext.settings, ext.factory, date(2026, 11, 30))["mismatches"] == []

    # 5. The postman delivers: the post's signed callback closes the case.
    post = Citizen(browser, base, "c1-post")
    post.goto("/sandbox/postal/")
    post.page.click(f"tr[data-dossier='{code}'] button:has-text('Đã phát')")
    assert "HTTP 200" in text_of(post.page, ".flash")
    assert _status(app, code) == "returned"
    _drain(post)  # the hand-back notice leaves through the outbox
    citizen.goto(f"/portal/dossiers/{code}")
    assert "Đã trả kết quả" in text_of(citizen.page, "#status")
    history = text_of(citizen.page, "#history")
    assert "Đã yêu cầu bổ sung" in history
    assert "Bắt đầu thanh toán trực tuyến" in history
    assert "Đã thanh toán" in history
    assert "Bưu chính đã phát kết quả" in history
    citizen.shot("returned")
    # every status change reached the citizen by SMS
    texts = [m["text"] for m in citizen.context.request.get(
        f"{base}/sandbox/sms/messages?to={NEW_CITIZEN['phone']}").json()]
    assert any(code in t and "bổ sung" in t for t in texts)
    assert any(code in t and "thanh toán" in t for t in texts)
    assert any(code in t and "đã trả kết quả" in t for t in texts)
    citizen.close()
    post.close()


def test_volunteer_submits_for_a_citizen_who_confirms_by_sms(browser, live_server, tmp_path):
    clock.set_now(datetime(2026, 11, 30, 10, 0, tzinfo=VN_TZ))
    base = live_server["url"]
    volunteer = Officer(browser, base, "c2-volunteer")
    volunteer.login("volunteer.anhoathinh")
    volunteer.goto("/portal/assist?procedure=birth_registration")
    volunteer.page.fill("#i-citizen_id_number", CITIZEN["username"])
    volunteer.page.select_option("#i-unit", "anhoathinh")
    for name, value in {"child_full_name": "Nguyễn Gia Hân", "birth_date": "2026-11-20",
                        "birth_place": "Trạm y tế xã An Hòa Thịnh", "mother_full_name": "Lê Thị Hoa",
                        "requester_relationship": "Cha"}.items():
        volunteer.page.fill(f"#f-{name}", value)
    volunteer.page.select_option("#f-gender", "female")
    scan = tmp_path / "giay-chung-sinh.png"
    scan.write_bytes(_png())
    volunteer.page.set_input_files("#i-attachments", str(scan))
    volunteer.page.check("#i-declaration")
    volunteer.fits("assist")
    volunteer.page.click("#assist-submit")
    volunteer.page.wait_for_url("**/portal/assist/*")
    citizen = Citizen(browser, base, "c2-citizen")
    volunteer.page.fill("#i-otp", citizen.sms_code(CITIZEN["phone"]))  # read out by the citizen
    volunteer.fits("consent")
    volunteer.page.click("#code-submit")
    flash = text_of(volunteer.page, ".flash.ok")
    code = re.search(r"hồ sơ (\S+) cho công dân", flash).group(1)

    # The citizen logs in on the phone (password, then the SMS code) and finds the dossier.
    citizen.goto("/portal/login")
    citizen.page.fill("#i-id_number", CITIZEN["username"])
    citizen.page.fill("#i-password", PASSWORD)
    citizen.page.click("#login-submit")
    citizen.page.wait_for_url("**/portal/code")
    citizen.page.fill("#i-otp", citizen.sms_code(CITIZEN["phone"]))
    citizen.page.click("#code-submit")
    citizen.page.wait_for_url("**/portal/dossiers")
    assert citizen.page.locator(f"li[data-code='{code}']").count() == 1
    citizen.shot("my-dossiers")
    citizen.page.click(f"li[data-code='{code}'] a")
    assert "Nộp hộ" in text_of(citizen.page, "#history")
    citizen.shot("assisted-dossier")
    volunteer.close()
    citizen.close()
