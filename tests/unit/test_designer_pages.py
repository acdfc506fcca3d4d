"""The designer's pages: who may open them, CSRF on the modeler's JSON calls, the draft checked on
save, deployment, version history with roll-back, and the migration page."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from engine import services
from engine.db import transaction
from engine.models import Dossier, Procedure, Role, User, UserRole
from scripts.seed import DEMO_PASSWORD
from tests.procedures.test_designer_versions import NEW_FORM, NEW_TASK, _with_new_task
from tests.unit.test_designer_api import CODE, _running_case, designer_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from designer_app(tmp_path_factory)


def _csrf(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(app, username: str):
    client = app.test_client()
    client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": _csrf(client, "/login")})
    return client


def _page_data(client) -> tuple[dict, str]:
    page = client.get(f"/designer/{CODE}").get_data(as_text=True)
    blocks = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, re.S)
    data = next(json.loads(text) for _id, text in blocks if '"urls"' in text)
    return data, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_officers_and_anonymous_users_cannot_design(app):
    anonymous = app.test_client()
    assert anonymous.get("/designer/").status_code == 302
    with transaction(app.extensions["motcua"].factory) as session:
        officer = session.scalar(select(User.username).join(UserRole, UserRole.user_id == User.id)
                                 .where(UserRole.role == Role.JUSTICE.value).limit(1))
    client = _login(app, officer)
    assert client.get("/designer/").status_code == 403
    assert client.get(f"/designer/{CODE}").status_code == 403
    assert client.post(f"/designer/{CODE}/draft", json={"xml": "<x/>"}).status_code in (400, 403)


def test_the_designer_saves_sees_problems_deploys_and_rolls_back(app):
    client = _login(app, Role.DESIGNER.value)
    listing = client.get("/designer/")
    assert listing.status_code == 200
    assert "Đăng ký khai sinh" in listing.get_data(as_text=True)
    data, token = _page_data(client)
    assert data["version"] == 1
    assert "bpmndi:BPMNDiagram" in data["xml"] or "BPMNDiagram" in data["xml"]  # laid out for the modeler
    assert "interagency.send" in {o["name"] for o in data["operations"]}
    forms = {**data["task_forms"], NEW_TASK: NEW_FORM}
    xml = _with_new_task(data["xml"], deadline=None)

    # Without the session's CSRF token the modeler's call is refused and nothing is stored.
    assert client.post(data["urls"]["save"], json={"xml": xml}).status_code == 400
    saved = client.post(data["urls"]["save"], headers={"X-CSRF-Token": token},
                        json={"xml": xml, "lane_roles": data["lane_roles"], "task_forms": forms})
    assert saved.status_code == 200
    problems = saved.get_json()["problems"]
    assert [(p["element"], p["rule"]) for p in problems] == [(NEW_TASK, "deadline")]
    assert problems[0]["title"] == "Hạn xử lý"  # the rule named in the page language (Vietnamese)
    refused = client.post(data["urls"]["deploy"], headers={"X-CSRF-Token": token}, json={"comment": "x"})
    assert refused.status_code == 422
    assert refused.get_json()["problems"][0]["element"] == NEW_TASK

    fixed = client.post(data["urls"]["save"], headers={"X-CSRF-Token": token},
                        json={"xml": _with_new_task(data["xml"], deadline="same_day"),
                              "lane_roles": data["lane_roles"], "task_forms": forms})
    assert fixed.get_json()["problems"] == []
    reopened, _ = _page_data(client)
    assert reopened["draft"] is True
    assert NEW_TASK in reopened["xml"]
    deployed = client.post(data["urls"]["deploy"], headers={"X-CSRF-Token": token}, json={"comment": "thêm bước"})
    assert deployed.status_code == 200
    assert deployed.get_json()["version"] == 2

    history = client.get(f"/designer/{CODE}/versions?compare=1")
    text = history.get_data(as_text=True)
    assert history.status_code == 200
    assert "thêm bước" in text
    assert NEW_TASK in text
    rolled = client.post(f"/designer/{CODE}/versions/1/redeploy",
                         data={"csrf_token": _csrf(client, f"/designer/{CODE}/versions"), "comment": "quay lại"})
    assert rolled.status_code == 302
    with transaction(app.extensions["motcua"].factory) as session:
        procedure = session.scalar(select(Procedure).where(Procedure.code == CODE))
        current = services.current_version(session, procedure)
        assert (current.version, current.redeploys_version, current.comment) == (3, 1, "quay lại")


def test_the_migration_page_moves_the_safe_cases(app):
    code = _running_case(app)
    factory = app.extensions["motcua"].factory
    with transaction(factory) as session:
        version = session.scalar(select(Dossier).where(Dossier.code == code)).model_version.version
    client = _login(app, Role.DESIGNER.value)
    data, token = _page_data(client)
    client.post(data["urls"]["discard"], headers={"X-CSRF-Token": token})
    data, token = _page_data(client)
    client.post(data["urls"]["save"], headers={"X-CSRF-Token": token},
                json={"xml": _with_new_task(data["xml"], deadline="same_day"), "lane_roles": data["lane_roles"],
                      "task_forms": {**data["task_forms"], NEW_TASK: NEW_FORM}})
    target = client.post(data["urls"]["deploy"], headers={"X-CSRF-Token": token}, json={}).get_json()["version"]

    page = client.get(f"/designer/{CODE}/migrate?from={version}&to={target}")
    assert page.status_code == 200
    assert code in page.get_data(as_text=True)
    moved = client.post(f"/designer/{CODE}/migrate", data={
        "csrf_token": _csrf(client, f"/designer/{CODE}/migrate?from={version}&to={target}"),
        "from": version, "to": target, "dossier": [code]})
    assert moved.status_code == 302
    with transaction(factory) as session:
        assert session.scalar(select(Dossier).where(Dossier.code == code)).model_version.version == target
