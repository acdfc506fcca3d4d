"""The process designer in a real browser (issue 7, must show 1): the designer adds a step to
birth registration with the bpmn-js palette and the side panel, sees the missing deadline flagged
on that step when saving, fixes it, and deploys version 2. New cases run through the new step;
a case started on version 1 finishes on version 1 without it. Every page fits the screens.

The test has its own server and database: deploying a new version of birth registration must not
change what the other browser tests (same procedure) see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from engine import clock, jobs, services
from engine.calendar import VN_TZ
from engine.db import transaction
from engine.models import Dossier, Procedure, ProcessModelVersion, Task, User
from tests.e2e.conftest import Officer, serve_demo, text_of

PROCEDURE = "birth_registration"
MONDAY = datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ)  # a working day, office hours
NEW_TASK = "Kiểm tra thông tin người được khai sinh"
NEW_FORM = "verify_birth"
NEW_SCHEMA = {
    "title": "Kiểm tra thông tin người được khai sinh", "type": "object", "additionalProperties": False,
    "required": ["decision"],
    "properties": {
        "decision": {"type": "string", "enum": ["propose_approve", "propose_refuse"], "title": "Đề xuất"},
        "note": {"type": "string", "maxLength": 2000, "title": "Ghi chú"},
    },
}
FORM = {
    "child_full_name": "Trần Gia Bảo", "birth_date": "2026-11-10", "gender": "male",
    "birth_place": "Trạm y tế xã An Hòa Thịnh, Hà Tĩnh", "mother_full_name": "Lê Thị Hoa",
    "requester_relationship": "Mẹ",
}


@pytest.fixture(scope="module")
def designer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app on its own database (not the shared live_server); the demo data (version 1) is
    seeded an hour before the test's Monday morning."""
    with serve_demo(tmp_path_factory.mktemp("e2e-designer") / "designer.db",
                    before_seed=lambda: clock.set_now(MONDAY - timedelta(hours=1))) as server:
        yield server


# --- the cases, driven through the engine's services as the officers' pages would ---------------


def _drain(app: Any) -> None:
    ext = app.extensions["motcua"]
    jobs.drain(ext.factory, ext.registry, lease=timedelta(seconds=30))


def _submit(app: Any) -> str:
    """A dossier received at the counter and accepted: the case is in the procedure's own work."""
    with transaction(app.extensions["motcua"].factory) as session:
        code = services.submit_dossier(
            session, procedure_code=PROCEDURE, unit_code="anhoathinh", form=FORM, channel="counter",
            applicant={"type": "individual", "full_name": "Lê Thị Hoa", "phone": "0900000002"},
            actor=services.SYSTEM_ACTOR).code
    _drain(app)
    _complete(app, code, "receive", {"decision": "accept"})
    return code


def _complete(app: Any, code: str, step: str, data: dict[str, Any]) -> None:
    with transaction(app.extensions["motcua"].factory) as session:
        task = session.scalar(select(Task).join(Dossier, Dossier.id == Task.dossier_id)
                              .where(Dossier.code == code, Task.spec_name == step, Task.state == "ready"))
        assert task is not None, f"{code} has no open {step}"
        officer = session.scalar(select(User).where(User.unit_id == task.unit_id,
                                                    User.role_rows.any(role=task.role)))
        assert officer is not None
        services.complete_task(session, task.id, actor=services.Actor.of(officer), data=data)
    _drain(app)


def _case(app: Any, code: str) -> dict[str, Any]:
    """The case's version, whether it finished, its open tasks and every step it was given."""
    with transaction(app.extensions["motcua"].factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier is not None
        version = session.get(ProcessModelVersion, dossier.model_version_id)
        assert version is not None
        tasks = session.scalars(select(Task).where(Task.dossier_id == dossier.id)).all()
        return {"version": version.version, "finished": dossier.finished_at is not None, "status": dossier.status,
                "open": [(t.spec_name, t.name) for t in tasks if t.state in ("ready", "started")],
                "steps": [t.spec_name for t in tasks]}


def _running(app: Any, version: int) -> int:
    """Running cases of the procedure on that version."""
    with transaction(app.extensions["motcua"].factory) as session:
        procedure = session.scalar(select(Procedure).where(Procedure.code == PROCEDURE))
        assert procedure is not None
        rows = session.scalars(select(Dossier.id).join(ProcessModelVersion,
                                                       ProcessModelVersion.id == Dossier.model_version_id)
                               .where(ProcessModelVersion.procedure_id == procedure.id,
                                      ProcessModelVersion.version == version, Dossier.finished_at.is_(None))).all()
        return len(rows)


# --- the page ------------------------------------------------------------------------------------


def _center(page: Any, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A real mouse drag in small steps, as bpmn-js needs hover events to find the drop target;
    the first steps go the way of the drag (the space tool takes its direction from them)."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + (end[0] - start[0]) / 4, start[1] + (end[1] - start[1]) / 4, steps=5)
    page.mouse.move(*end, steps=20)
    page.mouse.up()


def _save(page: Any, saves: int) -> int:
    page.wait_for_selector(f"#canvas[data-saves='{saves}']:not([data-saving])")
    return int(page.get_attribute("#canvas", "data-problems") or -1)


def test_a_designer_adds_a_step_and_deploys_version_2(browser, designer_server):
    clock.set_now(MONDAY)
    app, base = designer_server["app"], designer_server["url"]
    old_case = _submit(app)  # started on version 1, now at appraisal
    assert _case(app, old_case)["version"] == 1
    assert [s for s, _name in _case(app, old_case)["open"]] == ["appraise"]

    # 1. The designer logs in and opens birth registration from the list of procedures.
    designer = Officer(browser, base, "7-designer")
    designer.login("designer")
    designer.page.wait_for_url("**/designer/")
    row = designer.page.locator(f"tr[data-procedure='{PROCEDURE}']")
    assert row.count() == 1
    designer.fits("procedures")
    row.locator("a").first.click()
    page = designer.page
    page.wait_for_selector("#canvas[data-state='ready']")
    assert text_of(page, "#save-draft") == "Lưu bản nháp"  # the UI is Vietnamese by default

    # 2. Room for a step after the start event (space tool), then a task from the palette dropped
    #    on the sequence flow bf_start: bpmn-js splits the flow around the new task.
    start_x, start_y = _center(page, "g.djs-element[data-element-id='work_start']")
    page.click(".djs-palette .entry[data-action='space-tool']")
    _drag(page, (start_x + 30, start_y - 45), (start_x + 170, start_y - 45))
    flow = _center(page, "g.djs-element[data-element-id='bf_start']")
    _drag(page, _center(page, ".djs-palette .entry[data-action='create.task']"), flow)
    page.wait_for_selector("#p-kind")
    new_id = page.input_value("#p-id")
    assert new_id not in ("work_start", "appraise", "bf_start")
    # Reading the model (not changing it): the flow now ends at the new task.
    assert page.evaluate("""id => window.motcuaDesigner.get('elementRegistry').get('bf_start')
                                 .businessObject.targetRef.id""", new_id) == new_id

    # 3. The side panel: a user task with a name and a new form; no deadline yet.
    page.select_option("#p-kind", "bpmn:UserTask")
    page.wait_for_selector("#p-form")
    assert page.input_value("#p-id") == new_id  # replacing the kind keeps the id
    page.fill("#p-name", NEW_TASK)
    page.press("#p-name", "Tab")
    page.select_option("#p-form", label="biểu mẫu mới…")
    page.fill("#p-new-form-key", NEW_FORM)
    page.click("#p-create-form")
    page.fill("#p-form-schema", '{"type": "object",')  # a typing slip is shown, not saved
    page.press("#p-form-schema", "Tab")
    assert page.locator("#p-form-schema-error").is_visible()
    page.fill("#p-form-schema", json.dumps(NEW_SCHEMA, ensure_ascii=False, indent=2))
    page.press("#p-form-schema", "Tab")
    assert not page.locator("#p-form-schema-error").is_visible()
    assert page.input_value("#p-deadline-kind") == ""

    # 4. Save: the missing deadline is a problem, listed and shown on the new task.
    page.click("#save-draft")
    assert _save(page, 1) == 1
    problem = page.locator(f"#problems li[data-element='{new_id}']")
    assert problem.count() == 1
    assert problem.get_attribute("data-rule") == "deadline"
    assert "Hạn xử lý" in problem.inner_text()  # the rule's title, translated
    assert page.locator(f"g.djs-element.has-problem[data-element-id='{new_id}']").count() == 1
    assert text_of(page, f".djs-overlays[data-container-id='{new_id}'] .problem-badge") == "1"
    page.click("#canvas", position={"x": 600, "y": 40})  # empty canvas: nothing selected
    assert page.locator("#p-id").count() == 0
    problem.click()  # the list leads to the element
    page.wait_for_function("id => document.querySelector('#p-id') && document.querySelector('#p-id').value === id",
                           arg=new_id)
    designer.fits("designer-problem")

    # 5. One working day to do it; Ctrl+S saves: no problems left.
    page.select_option("#p-deadline-kind", "working_days")
    assert page.input_value("#p-deadline-amount") == "1"
    page.keyboard.press("Control+s")
    assert _save(page, 2) == 0
    assert page.locator("g.djs-element.has-problem").count() == 0
    page.click("#show-changes")
    page.wait_for_selector(f"#changes li[data-element='{new_id}']")
    assert "working_days:1" in text_of(page, f"#changes li[data-element='{new_id}']")
    assert "bf_start" in text_of(page, "#changes")

    # 6. Deploy with a comment: version 2 is current, version 1 keeps its running cases.
    page.click("#deploy")
    page.fill("#deploy-comment", "Thêm bước kiểm tra thông tin người được khai sinh")
    page.click("#deploy-confirm")
    page.wait_for_url("**/designer/birth_registration/versions")
    assert "2" in text_of(page, ".flash.ok")
    assert page.locator("tr[data-version='2'] .badge.current").count() == 1
    assert "Thêm bước kiểm tra" in text_of(page, "tr[data-version='2']")
    # The old case and the demo ones stay on version 1.
    assert text_of(page, "tr[data-version='1'] td:nth-child(6)") == str(_running(app, 1))
    assert text_of(page, "tr[data-version='2'] td:nth-child(6)") == "0"
    designer.fits("deployed")
    page.click("#compare-1")
    page.wait_for_selector("#changes")
    assert NEW_TASK in text_of(page, "#changes")
    designer.fits("versions-compare")

    # 7. A new case starts on version 2 and reaches the new step, then appraisal.
    new_case = _submit(app)
    case = _case(app, new_case)
    assert case["version"] == 2
    assert (new_id, NEW_TASK) in case["open"]
    _complete(app, new_case, new_id, {"decision": "propose_approve", "note": "Thông tin khớp với giấy chứng sinh"})
    assert [s for s, _name in _case(app, new_case)["open"]] == ["appraise"]

    # 8. The case started on version 1 finishes on version 1 and never gets the new step.
    _complete(app, old_case, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    _complete(app, old_case, "approve", {"decision": "approve"})
    _complete(app, old_case, "hand_back", {"decision": "delivered", "fee_collected": 0})
    case = _case(app, old_case)
    assert case["version"] == 1
    assert case["finished"]
    assert case["status"] == "returned"
    assert new_id not in case["steps"]
    assert {"appraise", "approve", "hand_back"} <= set(case["steps"])

    # 9. Roll back: version 1 deployed again as version 3 (the cases keep their versions).
    page.fill("#comment-1", "Quay lại quy trình cũ")
    page.click("#rollback-1")
    page.wait_for_selector("tr[data-version='3'] .badge.current")
    assert "Quay lại quy trình cũ" in text_of(page, "tr[data-version='3']")
    assert _case(app, new_case)["version"] == 2
    designer.close()


def test_every_procedure_opens_and_saves_unchanged(browser, designer_server):
    """The modeler reads and writes back every engine extension (properties, connector operations
    and parameters, messages, message variables, scripts, conditions): saving an untouched model
    finds no problem and no difference (the pool the designer draws around the lanes is layout)."""
    designer = Officer(browser, designer_server["url"], "7-designer-roundtrip")
    designer.login("designer")
    designer.page.wait_for_url("**/designer/")
    page = designer.page
    codes = [row.get_attribute("data-procedure") for row in page.query_selector_all("tr[data-procedure]")]
    assert len(codes) >= 10
    for code in codes:
        designer.goto(f"/designer/{code}")
        page.wait_for_selector("#canvas[data-state='ready']")
        page.click("#save-draft")
        assert _save(page, 1) == 0, f"{code}: {text_of(page, '#problems')}"
        page.click("#show-changes")
        page.wait_for_selector("#changes li")
        changed = [item.get_attribute("data-element") for item in page.query_selector_all("#changes > li")]
        assert [c for c in changed if c] == [], (code, changed)  # only the "no change" line
        if code == "linked_birth_residence_health_insurance":
            xml = page.evaluate("() => window.motcuaDesigner.saveXML().then(r => r.xml)")
            assert "<spiffworkflow:messageVariable>" in xml
            assert "<spiffworkflow:serviceTaskOperator" in xml
        with page.expect_navigation():  # discarding (confirmed by the dialog handler) opens the page again
            page.click("#discard-draft")
        page.wait_for_selector("#canvas[data-state='ready']")
        assert "lưu lần cuối" not in text_of(page, "#designer-basis")  # no draft left
    assert not designer.errors, designer.errors
    designer.close()
