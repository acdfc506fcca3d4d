"""The officers' day in a real browser: a citizen's online dossier is received by the one-stop
officer, appraised by the justice officer, approved and signed by the leader (with a second
factor), and handed back by the one-stop officer. Every page fits an office screen and a phone."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import datetime

from sqlalchemy import select

from engine import clock
from engine.calendar import VN_TZ
from engine.db import transaction
from engine.models import Dossier, Task
from scripts.seed import CITIZEN, DEMO_PASSWORD
from tests.e2e.conftest import Officer, text_of, totp_now
from tests.factories import api_token

PROCEDURE = "birth_registration"
FORM = {
    "child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-02", "gender": "male",
    "birth_place": "Trạm y tế xã An Hòa Thịnh, Hà Tĩnh", "mother_full_name": "Phạm Thị Dung",
    "mother_id_number": "001199000111", "father_full_name": "Nguyễn Văn Bình", "requester_relationship": "Mẹ",
}


def _png(width: int = 40, height: int = 24) -> bytes:
    """A small real PNG (a red bar), as a scan would be."""
    row = b"\x00" + b"\xb3\x26\x1e" * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _submit_online(app) -> str:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_token(client, CITIZEN['username'], DEMO_PASSWORD)}"}
    body = {
        "procedure": PROCEDURE, "unit": "anhoathinh",
        "applicant": {"type": "individual", "full_name": "Phạm Thị Dung", "phone": "0900000001"},
        "form": FORM, "delivery": {"method": "counter"},
        "attachments": [{"name": "giay-chung-sinh.png", "mime": "image/png",
                         "content_base64": base64.b64encode(_png()).decode()}],
    }
    response = client.post("/api/v1/dossiers", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["code"]


def _open_task(app, code: str) -> tuple[str, str]:
    with transaction(app.extensions["motcua"].factory) as session:
        row = session.execute(select(Task.id, Task.spec_name).join(Dossier, Dossier.id == Task.dossier_id)
                              .where(Dossier.code == code, Task.state == "ready", Task.kind == "user")).first()
    assert row is not None, f"{code} has no open task"
    return row[0], row[1]


def _drain(officer: Officer) -> None:
    """Run the service steps now (signing, notifications), as the worker would within seconds."""
    response = officer.context.request.post(officer.base + "/api/v1/test/drain")
    assert response.ok


def test_a_dossier_from_receipt_to_hand_back(browser, live_server):
    clock.set_now(datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ))  # Monday morning: same-day procedure
    app, base = live_server["app"], live_server["url"]
    code = _submit_online(app)

    # 1. The one-stop officer logs in, finds the new dossier among the unit's unclaimed work.
    onestop = Officer(browser, base, "1-onestop")
    onestop.goto("/login")
    onestop.fits("login")
    onestop.login("onestop.anhoathinh")
    onestop.page.wait_for_url("**/inbox")
    onestop.goto(f"/reception?procedure={PROCEDURE}")  # the walk-in counter form fits too
    assert onestop.page.locator("#f-child_full_name").count() == 1
    onestop.fits("reception")
    onestop.goto("/inbox")
    onestop.page.click("#tab-unit")
    row = onestop.page.locator(f"tr[data-dossier='{code}']")
    assert row.count() == 1
    assert "ngày làm việc" in text_of(onestop.page, f"tr[data-dossier='{code}']")
    onestop.fits("inbox")
    row.locator("a").first.click()
    onestop.page.click("#claim")
    assert onestop.page.locator(".attachment-view img").count() == 1  # the scan, shown in the page
    onestop.page.wait_for_function("() => document.querySelector('.attachment-view img').complete")
    assert onestop.page.evaluate("() => document.querySelector('.attachment-view img').naturalWidth") == 40
    onestop.fits("receive")
    onestop.page.click("button[name=decision][value=accept]")
    onestop.page.wait_for_url("**/inbox?tab=mine")
    assert code in text_of(onestop.page, ".flash.ok")
    _drain(onestop)

    # 2. The justice officer appraises; a missing required field is refused with its message.
    justice = Officer(browser, base, "2-justice")
    justice.login("justice.anhoathinh")
    justice.page.wait_for_url("**/inbox")
    task_id, step = _open_task(app, code)
    assert step == "appraise"
    justice.goto(f"/tasks/{task_id}")
    justice.page.click("#claim")
    justice.page.click("button[name=decision][value=propose_approve]")  # birth proof not chosen
    assert justice.page.locator(".field.has-error #f-birth_proof").count() == 1
    justice.fits("appraise-error")
    justice.page.select_option("#f-birth_proof", "birth_certificate")
    justice.page.check("#f-parents_marriage_checked")
    justice.page.fill("#f-personal_id_number", "042226000123")
    justice.page.click("button[name=decision][value=propose_approve]")
    justice.page.wait_for_url("**/inbox?tab=mine")
    _drain(justice)
    # The online applicant checks the draft result before the leader signs it.
    client = app.test_client()
    citizen = {"Authorization": f"Bearer {api_token(client, CITIZEN['username'], DEMO_PASSWORD)}"}
    confirmed = client.post(f"/api/v1/dossiers/{code}/draft", headers=citizen, json={"confirm": True})
    assert confirmed.status_code == 200, confirmed.get_json()

    # 3. The leader logs in with a second factor set up at this first login, sees the draft, and
    #    approves it from the approval queue; the worker signs.
    leader = Officer(browser, base, "3-leader")
    leader.login("leader.anhoathinh")
    leader.page.wait_for_url("**/login/totp")
    leader.fits("totp-enrol")
    secret = leader.page.inner_text("#totp-secret").strip()
    leader.page.fill("#otp", totp_now(secret))
    leader.page.click("#otp-submit")
    leader.page.wait_for_url("**/inbox")
    leader.goto("/approvals")
    assert code in text_of(leader.page, "#approvals")
    assert "Đề xuất phê duyệt" in text_of(leader.page, "#approvals")
    leader.fits("approvals")
    task_id, step = _open_task(app, code)
    leader.goto(f"/tasks/{task_id}")
    assert leader.page.locator("#draft-result").count() == 1
    leader.fits("approve")
    leader.goto("/approvals")
    leader.page.check(f"input[name=task_id][value='{task_id}']")
    leader.page.click("#batch-approve")
    leader.page.wait_for_url("**/approvals")
    assert code in text_of(leader.page, ".flash.ok")
    _drain(leader)

    # 4. The one-stop officer hands the result back; the case page shows the whole story.
    task_id, step = _open_task(app, code)
    assert step == "hand_back"
    onestop.goto(f"/tasks/{task_id}")
    onestop.page.click("#claim")
    onestop.page.fill("#f-receiver_name", "Phạm Thị Dung")
    onestop.page.fill("#f-fee_collected", "0")
    onestop.fits("hand-back")
    onestop.page.click("button[name=decision][value=delivered]")
    onestop.page.wait_for_url("**/inbox?tab=mine")
    _drain(onestop)
    onestop.goto(f"/cases/{code}")
    onestop.page.wait_for_selector(".diagram[data-rendered]", state="attached")
    assert onestop.page.locator(".diagram[data-rendered='error']").count() == 0, text_of(onestop.page, ".diagram")
    marked = sum(int(d.get_attribute("data-marked") or 0) for d in onestop.page.query_selector_all(".diagram"))
    assert marked >= 4  # receive, appraise, approve, hand back are marked on the diagrams
    assert onestop.page.locator(".djs-element.m-completed").count() >= 4
    sheet = text_of(onestop.page, "#control-sheet")
    assert sheet.count("đúng hạn") + sheet.count("trước hạn") >= 4
    assert "Đã trả kết quả" in text_of(onestop.page, "main")
    onestop.fits("case")
    with transaction(app.extensions["motcua"].factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier.status == "returned"
        assert dossier.finished_at is not None
    for person in (onestop, justice, leader):
        person.close()
