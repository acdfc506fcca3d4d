"""The officer HTTP API: login with lockout, inbox scopes, claim/complete, dossier reads, history,
public tracking, the OpenAPI document, and an authorization matrix over roles × units.
Submission with attachments in detail: test_dossier_api.py."""

from __future__ import annotations

import base64
import re
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
from engine.models import Attachment, Dossier, Task, User
from scripts.seed import DEMO_PASSWORD, _seed_accounts
from tests.factories import api_token

PROCEDURE = "marital_status_confirmation"
FORM = {"purpose": "Kết hôn", "residence": "Thôn Đông, xã An Hòa Thịnh"}
APPLICANT = {"type": "individual", "full_name": "Phạm Thị Dung", "id_number": "001199000111", "phone": "0903334444"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "api.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    factory = application.extensions["motcua"].factory
    with transaction(factory) as session:
        _seed_accounts(session)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE),
                                 actor=services.SYSTEM_ACTOR)
    yield application
    application.extensions["motcua"].engine.dispose()


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ))


PDF = b"%PDF-1.4\n%%EOF\n"
SCAN = {"name": "to-khai.pdf", "content_base64": base64.b64encode(PDF).decode(), "mime": "application/pdf"}


def _submit(app, unit: str = "anhoathinh", *, attachments: list[dict[str, str]] | None = None) -> str:
    factory = app.extensions["motcua"].factory
    with transaction(factory) as session:
        code = services.submit_dossier(session, procedure_code=PROCEDURE, unit_code=unit, applicant=APPLICANT,
                                       form=FORM, channel="counter", actor=services.SYSTEM_ACTOR,
                                       attachments=attachments).code
    _drain(app)
    return code


def _drain(app) -> None:
    factory = app.extensions["motcua"].factory
    jobs.drain(factory, build_registry(Settings(env="test"), factory), lease=timedelta(seconds=30))


def _task_id(app, code: str, step: str) -> str:
    with transaction(app.extensions["motcua"].factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        task_id = session.scalar(select(Task.id).where(Task.dossier_id == dossier.id, Task.spec_name == step,
                                                       Task.state == "ready"))
    assert task_id is not None
    return task_id


_tokens: dict[str, str] = {}


def _token(client, username: str) -> dict[str, str]:
    if username not in _tokens:
        _tokens[username] = api_token(client, username, DEMO_PASSWORD)
    return {"Authorization": f"Bearer {_tokens[username]}"}


def test_login_gives_a_token_and_bad_credentials_do_not(app):
    client = app.test_client()
    ok = client.post("/api/v1/auth/login", json={"username": "onestop.anhoathinh", "password": DEMO_PASSWORD})
    assert ok.status_code == 200
    assert ok.get_json()["user"]["roles"] == ["onestop"]
    bad = client.post("/api/v1/auth/login", json={"username": "onestop.anhoathinh", "password": "wrong"})
    assert bad.status_code == 401
    assert bad.get_json()["error"]["code"] == "unauthorized"
    missing = client.post("/api/v1/auth/login", json={"username": "x"})
    assert missing.status_code == 422
    assert missing.get_json()["error"]["fields"] == {"password": ["required"]}
    assert client.get("/api/v1/tasks").status_code == 401
    assert client.get("/api/v1/tasks", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_repeated_failures_lock_the_account(app):
    client = app.test_client()
    for _ in range(4):
        assert client.post("/api/v1/auth/login", json={"username": "culture.luongphong",
                                                       "password": "nope"}).status_code == 401
    assert client.post("/api/v1/auth/login", json={"username": "culture.luongphong",
                                                   "password": "nope"}).status_code == 423
    locked = client.post("/api/v1/auth/login", json={"username": "culture.luongphong", "password": DEMO_PASSWORD})
    assert locked.status_code == 423  # even the right password waits for the lockout to end
    clock.freeze(clock.now() + timedelta(minutes=16))
    assert client.post("/api/v1/auth/login", json={"username": "culture.luongphong",
                                                   "password": DEMO_PASSWORD}).status_code == 200


def test_officers_work_a_dossier_through_the_api(app):
    client = app.test_client()
    code = _submit(app)
    onestop = _token(client, "onestop.anhoathinh")
    inbox = client.get("/api/v1/tasks?scope=unit", headers=onestop).get_json()
    row = next(item for item in inbox["items"] if item["dossier"] == code)
    assert row["step"] == "receive"
    assert row["working_days_left"] == 0
    assert row["urgency"] == "due_soon"
    assert inbox["counts"]["unit"] >= 1
    detail = client.get(f"/api/v1/tasks/{row['id']}", headers=onestop).get_json()
    assert detail["form"]["properties"]["decision"]["enum"] == ["accept", "supplement", "refuse"]
    assert detail["dossier_data"]["form"] == FORM
    assert client.post(f"/api/v1/tasks/{row['id']}/claim", headers=onestop).status_code == 200
    assert any(t["dossier"] == code for t in client.get("/api/v1/tasks?scope=mine", headers=onestop)
               .get_json()["items"])
    other = _token(client, "leader.anhoathinh")
    assert client.post(f"/api/v1/tasks/{row['id']}/claim", headers=other).status_code == 403  # wrong role
    invalid = client.post(f"/api/v1/tasks/{row['id']}/complete", json={"data": {"decision": "refuse"}},
                          headers=onestop)
    assert invalid.status_code == 422
    assert "note" in invalid.get_json()["error"]["fields"]
    done = client.post(f"/api/v1/tasks/{row['id']}/complete", json={"data": {"decision": "accept"}},
                       headers=onestop)
    assert done.get_json() == {"dossier": code, "status": "accepted", "status_code": 2}
    _drain(app)  # the worker sends the receipt (Mẫu 01) notice; then the case moves to appraisal
    again = client.post(f"/api/v1/tasks/{row['id']}/complete", json={"data": {"decision": "accept"}},
                        headers=onestop)
    assert again.status_code == 409
    justice = _token(client, "justice.anhoathinh")
    appraise = _task_id(app, code, "appraise")
    assert client.post(f"/api/v1/tasks/{appraise}/complete", json={"data": {"decision": "propose_approve"}},
                       headers=justice).status_code == 200
    dossier = client.get(f"/api/v1/dossiers/{code}", headers=justice).get_json()
    assert dossier["status_code"] == 4
    assert dossier["due_at"] == "2026-11-19T17:00:00+07:00"
    history = client.get(f"/api/v1/cases/{code}/history", headers=_token(client, "auditor")).get_json()
    actions = [event["action"] for event in history]
    assert actions.count("task_completed") == 2
    assert "dossier_viewed" in actions  # the justice officer's read was recorded


def test_inbox_filters_and_search(app):
    client = app.test_client()
    code = _submit(app)
    headers = _token(client, "onestop.anhoathinh")

    def dossiers(query: str) -> set[str]:
        response = client.get(f"/api/v1/tasks?scope=all&{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return {item["dossier"] for item in response.get_json()["items"]}

    assert code in dossiers(f"q={code}")
    assert dossiers(f"q={code}") == {code}
    assert code in dossiers("q=001199000111")  # applicant's ID number
    assert code in dossiers("q=Thị Dung")  # part of the applicant's name
    assert code not in dossiers("q=Nguyễn Văn Không Có")
    assert code in dossiers(f"procedure={PROCEDURE}&step=receive")
    assert code not in dossiers("step=appraise")
    assert code in dossiers("due_within_days=0")  # the receive task is due today
    clock.freeze(datetime(2026, 11, 13, 9, 0, tzinfo=VN_TZ))  # the Friday before: due Monday
    assert code not in dossiers("due_within_days=0")
    assert code in dossiers("due_within_days=1")
    bad = client.get("/api/v1/tasks?scope=everything", headers=headers)
    assert bad.status_code == 422
    assert client.get("/api/v1/tasks?limit=zero", headers=headers).get_json()["error"]["fields"] == {
        "limit": ["integer"]}


def test_public_tracking_needs_the_phone_digits(app):
    client = app.test_client()
    code = _submit(app)
    assert client.get(f"/api/v1/track/{code}?phone_last4=4444").get_json()["status"] == "submitted"
    assert client.get(f"/api/v1/track/{code}?phone_last4=1234").status_code == 404
    assert client.get(f"/api/v1/track/{code}").status_code == 404


# --- authorization matrix -----------------------------------------------------------------------

ROLES = ["onestop", "justice", "culture", "leader", "designer", "auditor", "admin", "citizen"]
ENDPOINTS = ["tasks", "task", "claim", "dossier", "history", "documents", "attachment", "submit"]
# expected status for a task/dossier of the caller's own unit, and of the other unit
EXPECTED: dict[tuple[str, str], tuple[int, int]] = {
    **{(role, "tasks"): (200, 200) for role in ("onestop", "justice", "culture", "leader")},
    **{(role, "tasks"): (403, 403) for role in ("designer", "auditor", "admin", "citizen")},
    ("onestop", "task"): (200, 403), ("onestop", "claim"): (200, 403),
    **{(role, "task"): (403, 403) for role in ("justice", "culture", "leader", "designer", "auditor", "admin",
                                               "citizen")},
    **{(role, "claim"): (403, 403) for role in ("justice", "culture", "leader", "designer", "auditor", "admin",
                                                "citizen")},
    **{(role, "dossier"): (200, 403) for role in ("onestop", "justice", "culture", "leader")},
    ("auditor", "dossier"): (200, 200),
    **{(role, "dossier"): (403, 403) for role in ("designer", "admin", "citizen")},
    **{(role, "history"): (200, 403) for role in ("onestop", "justice", "culture", "leader")},
    ("auditor", "history"): (200, 200),
    **{(role, "history"): (403, 403) for role in ("designer", "admin", "citizen")},
    # a dossier's files: as the dossier (the matrix dossiers are not the demo citizen's)
    **{(role, endpoint): (200, 403) for role in ("onestop", "justice", "culture", "leader")
       for endpoint in ("documents", "attachment")},
    ("auditor", "documents"): (200, 200), ("auditor", "attachment"): (200, 200),
    **{(role, endpoint): (403, 403) for role in ("designer", "admin", "citizen")
       for endpoint in ("documents", "attachment")},
    # submitting into the unit: its one-stop officers; citizens into any unit
    ("onestop", "submit"): (201, 403), ("citizen", "submit"): (201, 201),
    **{(role, "submit"): (403, 403) for role in ("justice", "culture", "leader", "designer", "auditor", "admin")},
}
UNIT_CODES = {"own": "anhoathinh", "other": "luongphong"}
USERS = {"onestop": "onestop.anhoathinh", "justice": "justice.anhoathinh", "culture": "culture.anhoathinh",
         "leader": "leader.anhoathinh", "designer": "designer", "auditor": "auditor", "admin": "admin",
         "citizen": "001099012345"}


@pytest.fixture(scope="module")
def matrix_cases(app):
    cases = {}
    for where, unit in UNIT_CODES.items():
        code = _submit(app, unit, attachments=[SCAN])
        with transaction(app.extensions["motcua"].factory) as session:
            attachment_id = session.scalar(select(Attachment.id).join(Dossier).where(Dossier.code == code))
        cases[where] = (code, _task_id(app, code, "receive"), attachment_id)
    return cases


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("where", ["own", "other"])
def test_authorization_matrix(app, matrix_cases, role, endpoint, where):
    client = app.test_client()
    headers = _token(client, USERS[role])
    code, task_id, attachment_id = matrix_cases[where]
    if endpoint == "tasks":
        response = client.get("/api/v1/tasks?scope=all", headers=headers)
        if response.status_code == 200:  # the list itself is scoped: never the other unit's work
            dossiers = {item["dossier"] for item in response.get_json()["items"]}
            assert matrix_cases["other"][0] not in dossiers
    elif endpoint == "task":
        response = client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    elif endpoint == "claim":
        response = client.post(f"/api/v1/tasks/{task_id}/claim", headers=headers)
        if response.status_code == 200:
            client.post(f"/api/v1/tasks/{task_id}/unclaim", headers=headers)
    elif endpoint == "dossier":
        response = client.get(f"/api/v1/dossiers/{code}", headers=headers)
    elif endpoint == "documents":
        response = client.get(f"/api/v1/dossiers/{code}/documents", headers=headers)
    elif endpoint == "attachment":
        response = client.get(f"/api/v1/dossiers/{code}/attachments/{attachment_id}", headers=headers)
        if response.status_code == 200:
            assert response.data == PDF
    elif endpoint == "submit":
        applicant = {"type": "individual"} if role == "citizen" else APPLICANT
        response = client.post("/api/v1/dossiers", headers=headers, json={
            "procedure": PROCEDURE, "unit": UNIT_CODES[where], "applicant": applicant, "form": FORM})
    else:
        response = client.get(f"/api/v1/cases/{code}/history", headers=headers)
    expected = EXPECTED[(role, endpoint)][0 if where == "own" else 1]
    assert response.status_code == expected, response.get_json()


def test_the_matrix_covers_every_role_and_endpoint():
    assert {(r, e) for r in ROLES for e in ENDPOINTS} == set(EXPECTED)


# --- OpenAPI ------------------------------------------------------------------------------------

def test_openapi_describes_every_api_route(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.startswith("/api/v1/test/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))  # <int:id> → {id}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (path, method.lower()) not in described:
                missing.append(f"{method} {path}")
    assert missing == []


def test_password_hashes_are_argon2(app):
    with transaction(app.extensions["motcua"].factory) as session:
        hashes = session.scalars(select(User.password_hash)).all()
    assert hashes
    assert all(h.startswith("$argon2id$") for h in hashes)
