"""The designer part of the HTTP API: who may use it, drafts checked on save with element and
line, deployment refused while problems remain, versions, roll-back and case migration."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from backoffice.app import create_app
from connectors import build_registry
from engine import catalogue, clock, jobs, services
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import Dossier, Procedure, Role, Unit, User, UserRole
from scripts.seed import DEMO_PASSWORD, _seed_accounts
from tests.factories import api_token
from tests.procedures.test_designer_versions import NEW_FORM, NEW_TASK, _with_new_task

CODE = "birth_registration"
FORM = {"child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-10", "gender": "male",
        "birth_place": "Trạm y tế xã An Hòa Thịnh", "mother_full_name": "Phạm Thị Dung",
        "requester_relationship": "Mẹ"}


def designer_app(tmp_path_factory):
    """An app on its own SQLite database with the demo accounts and birth registration (version 1)."""
    path = tmp_path_factory.mktemp("designer") / "designer.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / CODE),
                                 actor=services.SYSTEM_ACTOR)
    yield application
    application.extensions["motcua"].engine.dispose()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from designer_app(tmp_path_factory)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def headers(client):
    return {"Authorization": f"Bearer {api_token(client, Role.DESIGNER.value, DEMO_PASSWORD)}"}


@pytest.fixture(scope="module")
def officer_headers(app, client):
    with transaction(app.extensions["motcua"].factory) as session:
        username = session.scalar(select(User.username).join(UserRole, UserRole.user_id == User.id)
                                  .where(UserRole.role == Role.JUSTICE.value).limit(1))
    return {"Authorization": f"Bearer {api_token(client, username, DEMO_PASSWORD)}"}


def _current(client, headers) -> dict:
    return next(v for v in client.get(f"/api/v1/procedures/{CODE}/versions", headers=headers).get_json()
                if v["current"])


def _deployed_xml(app) -> tuple[str, dict, dict]:
    with transaction(app.extensions["motcua"].factory) as session:
        procedure = session.scalar(select(Procedure).where(Procedure.code == CODE))
        version = services.current_version(session, procedure)
        return version.spec.bpmn_xml, dict(version.lane_roles), dict(version.task_forms or {})


def _running_case(app) -> str:
    clock.freeze(datetime(2026, 11, 19, 9, 0, tzinfo=VN_TZ))
    factory = app.extensions["motcua"].factory
    with transaction(factory) as session:
        unit = session.scalar(select(Unit).limit(1))
        code = services.submit_dossier(session, procedure_code=CODE, unit_code=unit.code, form=FORM,
                                       channel="counter", actor=services.SYSTEM_ACTOR,
                                       applicant={"type": "individual", "full_name": "Phạm Thị Dung"}).code
    jobs.drain(factory, build_registry(Settings(env="test"), factory), lease=timedelta(seconds=30))
    return code


def test_only_designers_reach_the_designer_api(client, officer_headers):
    assert client.get(f"/api/v1/procedures/{CODE}/versions").status_code == 401
    assert client.get(f"/api/v1/procedures/{CODE}/versions", headers=officer_headers).status_code == 403
    response = client.post(f"/api/v1/procedures/{CODE}/draft", headers=officer_headers, json={"xml": "<x/>"})
    assert response.status_code == 403


@pytest.mark.parametrize(("body", "field"), [
    ("not json", "body"),
    ({"xml": ""}, "xml"),
    ({"xml": "<x/>", "lane_roles": {"Tư pháp – Hộ tịch": "mayor"}}, "lane_roles"),
    ({"xml": "<x/>", "task_forms": {"appraise": []}}, "task_forms"),
])
def test_a_malformed_draft_is_refused_by_field(client, headers, body, field):
    kwargs = {"data": body, "content_type": "text/plain"} if isinstance(body, str) else {"json": body}
    response = client.post(f"/api/v1/procedures/{CODE}/draft", headers=headers, **kwargs)
    assert response.status_code in (400, 422)
    assert field in response.get_json()["error"]["fields"]


def test_draft_problems_block_deployment_then_a_fixed_draft_deploys_and_a_case_migrates(app, client, headers):
    running = _running_case(app)
    xml, lanes, forms = _deployed_xml(app)
    before = _current(client, headers)["version"]
    forms = {**forms, NEW_TASK: NEW_FORM}

    saved = client.post(f"/api/v1/procedures/{CODE}/draft", headers=headers,
                        json={"xml": _with_new_task(xml, deadline=None), "lane_roles": lanes, "task_forms": forms})
    assert saved.status_code == 200
    problems = saved.get_json()["problems"]
    assert [(p["element"], p["rule"]) for p in problems] == [(NEW_TASK, "deadline")]
    assert f'id="{NEW_TASK}"' in _with_new_task(xml, deadline=None).splitlines()[problems[0]["line"] - 1]
    refused = client.post(f"/api/v1/procedures/{CODE}/deploy", headers=headers, json={})
    assert refused.status_code == 422
    assert "deadline" in refused.get_json()["error"]["fields"]["problems"][0]
    assert _current(client, headers)["version"] == before

    fixed = client.post(f"/api/v1/procedures/{CODE}/draft", headers=headers,
                        json={"xml": _with_new_task(xml, deadline="same_day"), "lane_roles": lanes,
                              "task_forms": forms})
    assert fixed.get_json()["problems"] == []
    assert any(c["element"] == NEW_TASK and c["change"] == "added" for c in fixed.get_json()["changes"])
    deployed = client.post(f"/api/v1/procedures/{CODE}/deploy", headers=headers, json={"comment": "thêm bước"})
    assert deployed.status_code == 201
    current = _current(client, headers)
    assert (current["version"], current["comment"], current["deployed_by"]) == (
        before + 1, "thêm bước", "Thiết kế quy trình")

    check = client.get(f"/api/v1/dossiers/{running}/migration?to={before + 1}", headers=headers).get_json()
    assert (check["safe"], check["from_version"], check["reasons"]) == (True, before, [])
    moved = client.post(f"/api/v1/dossiers/{running}/migrate", headers=headers, json={"to_version": before + 1})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["to_version"] == before + 1
    again = client.post(f"/api/v1/dossiers/{running}/migrate", headers=headers, json={"to_version": before + 1})
    assert again.status_code == 409
    assert again.get_json()["error"]["fields"]["migration"] == ["the case is already on this version"]
    bad = client.post(f"/api/v1/dossiers/{running}/migrate", headers=headers, json={"to_version": "two"})
    assert bad.status_code == 422
    with transaction(app.extensions["motcua"].factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == running))
        assert dossier.model_version.version == before + 1

    rolled = client.post(f"/api/v1/procedures/{CODE}/versions/{before}/redeploy", headers=headers, json={})
    assert rolled.status_code == 201
    assert rolled.get_json() == {"version": before + 2, "redeploys_version": before}
    assert _current(client, headers)["redeploys_version"] == before


def test_process_models_contract(app, client, headers, officer_headers):
    auditor = {"Authorization": f"Bearer {api_token(client, Role.AUDITOR.value, DEMO_PASSWORD)}"}
    listed = client.get("/api/v1/process-models", headers=auditor)
    assert listed.status_code == 200
    birth = next(p for p in listed.get_json() if p["procedure"] == CODE)
    assert birth["versions"][0]["current"] is True
    assert client.get("/api/v1/process-models", headers=officer_headers).status_code == 403

    xml, _lanes, _forms = _deployed_xml(app)
    before = _current(client, headers)["version"]
    broken = xml.replace('<spiffworkflow:property name="deadline" value="same_day"/>', "", 1)
    assert broken != xml
    refused = client.post(f"/api/v1/process-models/{CODE}", headers=headers, data=broken,
                          content_type="application/xml")
    assert refused.status_code == 422
    problem = refused.get_json()["error"]["fields"]["bpmn"][0]
    assert problem["line"] > 0
    assert "deadline" in problem["message"]
    assert _current(client, headers)["version"] == before  # nothing deployed
    renamed = xml.replace('name="Thẩm định hồ sơ, kiểm tra giấy chứng sinh"', 'name="Thẩm định hồ sơ"', 1)
    deployed = client.post(f"/api/v1/process-models/{CODE}", headers=headers, data=renamed,
                           content_type="application/xml")
    assert deployed.status_code == 201
    assert deployed.get_json() == {"version": before + 1}
