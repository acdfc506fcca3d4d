"""The authorization matrix: every back-office page and every /api/v1 route, called by every kind
of user, answers as the matrix below says — allowed (anything but 401/403) or refused (401/403,
or the login page for pages) — and never with a server error. A route missing from the matrix
fails the test, so a new endpoint has to state who may call it.

Bodies are empty (`{}` for the API, only the CSRF token for pages): an allowed caller gets a
validation error (a page sends it back with the reason), a refused one must be refused (401/403)
before its input is looked at.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from engine import clock
from engine.calendar import VN_TZ
from scripts.seed import CITIZEN, DEMO_PASSWORD
from tests.factories import DEMO_PROCEDURE, api_token, counter_case, csrf_of, demo_app, page_login

PROCEDURE = DEMO_PROCEDURE
USERS = {
    "citizen": CITIZEN["username"],
    "onestop": "onestop.anhoathinh",
    "justice": "justice.anhoathinh",
    "leader": "leader.anhoathinh",
    "other": "onestop.luongphong",  # an officer of another commune
    "designer": "designer",
    "auditor": "auditor",
    "admin": "admin",
}
WHO = ("anonymous", *USERS)
EVERYONE = frozenset(WHO)
# Open to all, where a refusal is the point of the endpoint (wrong password, wrong code): only a
# server error is wrong.
PUBLIC = frozenset({*WHO, "public"})
SIGNED_IN = EVERYONE - {"anonymous"}
NOBODY: frozenset[str] = frozenset()
OFFICERS = frozenset({"onestop", "justice", "leader", "other"})
UNIT_READERS = frozenset({"onestop", "justice", "leader", "auditor"})  # the dossier's unit, auditors
TASK_ROLE = frozenset({"onestop"})  # the open task is the one-stop check of An Hòa Thịnh
DESIGNERS = frozenset({"designer", "admin"})
READERS = frozenset({"leader", "auditor"})

# (method, rule) → who may call it. The dossier is An Hòa Thịnh's, submitted at the counter (no owner).
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/"): EVERYONE,
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/otp"): PUBLIC,
    ("POST", "/login/otp"): PUBLIC,
    ("GET", "/login/totp"): PUBLIC,
    ("POST", "/login/totp"): PUBLIC,
    ("POST", "/lang/<code>"): EVERYONE,
    ("GET", "/vendor/<path:name>"): EVERYONE,
    ("GET", "/verify/<code>"): EVERYONE,
    ("POST", "/verify/<code>"): PUBLIC,
    ("GET", "/inbox"): OFFICERS,
    ("POST", "/inbox/claim"): OFFICERS,
    ("GET", "/reception"): frozenset({"onestop", "other"}),
    ("POST", "/reception"): frozenset({"onestop", "other"}),
    ("GET", "/tasks/<task_id>"): TASK_ROLE,
    ("POST", "/tasks/<task_id>/complete"): TASK_ROLE,
    ("POST", "/tasks/<task_id>/claim"): TASK_ROLE,
    ("POST", "/tasks/<task_id>/unclaim"): TASK_ROLE,
    ("POST", "/tasks/<task_id>/reassign"): frozenset({"leader"}),
    ("GET", "/cases/<code>"): UNIT_READERS,
    ("GET", "/cases/<code>/attachments/<int:attachment_id>"): UNIT_READERS,
    ("GET", "/approvals"): frozenset({"leader"}),
    ("POST", "/approvals"): frozenset({"leader"}),
    ("GET", "/audit/"): frozenset({"auditor"}),
    ("GET", "/audit/export.<fmt>"): frozenset({"auditor"}),
    ("GET", "/audit/cases/<code>"): frozenset({"auditor"}),
    ("GET", "/audit/cases/<code>/history.<fmt>"): frozenset({"auditor"}),
    ("GET", "/audit/cases/<code>/signed/<int:document_id>.pdf"): frozenset({"auditor"}),
    ("GET", "/audit/chain"): frozenset({"auditor"}),
    ("GET", "/reports/"): READERS,
    ("GET", "/reports/ontime.<fmt>"): READERS,
    ("GET", "/reports/register"): READERS,
    ("GET", "/reports/register.pdf"): READERS,
    ("GET", "/reports/dashboard"): READERS,
    ("GET", "/designer/"): DESIGNERS,
    ("GET", "/designer/<code>"): DESIGNERS,
    ("POST", "/designer/<code>/draft"): DESIGNERS,
    ("POST", "/designer/<code>/deploy"): DESIGNERS,
    ("POST", "/designer/<code>/discard"): DESIGNERS,
    ("GET", "/designer/<code>/diff"): DESIGNERS,
    ("GET", "/designer/<code>/versions"): DESIGNERS,
    ("POST", "/designer/<code>/versions/<int:number>/redeploy"): DESIGNERS,
    ("GET", "/designer/<code>/migrate"): DESIGNERS,
    ("POST", "/designer/<code>/migrate"): DESIGNERS,
    # --- API ---
    ("GET", "/api/v1/health"): EVERYONE,
    ("GET", "/api/v1/openapi.json"): EVERYONE,
    ("GET", "/api/v1/units"): EVERYONE,
    ("GET", "/api/v1/procedures"): EVERYONE,
    ("GET", "/api/v1/track/<code>"): EVERYONE,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/otp"): PUBLIC,
    ("POST", "/api/v1/citizens"): PUBLIC,
    ("POST", "/api/v1/citizens/verify"): PUBLIC,
    ("POST", "/api/v1/citizens/otp/resend"): PUBLIC,
    ("POST", "/api/v1/citizens/password-reset"): PUBLIC,
    ("POST", "/api/v1/citizens/password-reset/confirm"): PUBLIC,
    # Providers sign their callbacks: no user token opens them.
    ("POST", "/api/v1/connectors/payment/callback"): NOBODY,
    ("POST", "/api/v1/connectors/postal/callback"): NOBODY,
    ("GET", "/api/v1/me/dossiers"): SIGNED_IN,
    ("POST", "/api/v1/dossiers"): frozenset({"citizen", "onestop", "other"}),
    ("GET", "/api/v1/dossiers/<code>"): UNIT_READERS,
    ("GET", "/api/v1/dossiers/<code>/documents"): UNIT_READERS,
    ("GET", "/api/v1/dossiers/<code>/deadline"): UNIT_READERS,
    ("GET", "/api/v1/dossiers/<code>/attachments/<int:attachment_id>"): UNIT_READERS,
    ("GET", "/api/v1/dossiers/<code>/forms/<kind>.pdf"): UNIT_READERS,
    ("GET", "/api/v1/dossiers/<code>/signed/<int:document_id>.pdf"): UNIT_READERS,
    ("GET", "/api/v1/cases/<code>/history"): UNIT_READERS,
    # The owner's actions: this dossier has no owner, so nobody passes.
    ("POST", "/api/v1/dossiers/<code>/supplements"): NOBODY,
    ("POST", "/api/v1/dossiers/<code>/withdraw"): NOBODY,
    ("POST", "/api/v1/dossiers/<code>/draft"): NOBODY,
    ("POST", "/api/v1/dossiers/<code>/payments"): NOBODY,
    ("POST", "/api/v1/assisted/dossiers"): frozenset({"onestop", "other"}),
    ("POST", "/api/v1/assisted/dossiers/<int:consent_id>/confirm"): frozenset({"onestop", "other"}),
    ("GET", "/api/v1/tasks"): OFFICERS,
    ("GET", "/api/v1/tasks/<task_id>"): TASK_ROLE,
    ("POST", "/api/v1/tasks/<task_id>/claim"): TASK_ROLE,
    ("POST", "/api/v1/tasks/<task_id>/unclaim"): TASK_ROLE,
    ("POST", "/api/v1/tasks/<task_id>/complete"): TASK_ROLE,
    ("GET", "/api/v1/process-models"): DESIGNERS | {"auditor"},
    ("POST", "/api/v1/process-models/<code>"): DESIGNERS,
    ("GET", "/api/v1/procedures/<code>/versions"): DESIGNERS | {"auditor"},
    ("POST", "/api/v1/procedures/<code>/draft"): DESIGNERS,
    ("POST", "/api/v1/procedures/<code>/deploy"): DESIGNERS,
    ("POST", "/api/v1/procedures/<code>/versions/<int:number>/redeploy"): DESIGNERS,
    ("GET", "/api/v1/dossiers/<code>/migration"): DESIGNERS,
    ("POST", "/api/v1/dossiers/<code>/migrate"): DESIGNERS,
    ("GET", "/api/v1/reports/ontime"): READERS,
    ("GET", "/api/v1/reports/index-scores"): READERS,
    ("GET", "/api/v1/reports/online"): READERS,
    ("GET", "/api/v1/audit/verify"): frozenset({"auditor"}),
    ("GET", "/api/v1/audit/dossiers"): frozenset({"auditor"}),
    ("GET", "/api/v1/audit/dossiers/<code>/timeline"): frozenset({"auditor"}),
}
# Not in the matrix: the admin (Flask-Admin checks the admin role itself: tests/unit/test_views.py),
# the citizen portal (tests/unit/test_portal.py), test mode and the sandboxes (not mounted in
# production), static files, and logging out (it ends the caller's session).
OUTSIDE = ("/admin", "/portal", "/sandbox", "/api/v1/test/", "/static")
SKIPPED = {("POST", "/logout")}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from demo_app(tmp_path_factory, "authz", certificates=True, sandbox=True)


@pytest.fixture(scope="module")
def target(app) -> dict[str, str]:
    """The values of the rules' parameters: An Hòa Thịnh's dossier and its open one-stop task."""
    clock.freeze(datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ))
    code, task_id = counter_case(app)
    clock.reset()
    return {"code": code, "task_id": task_id, "attachment_id": "1", "document_id": "1", "consent_id": "1",
            "number": "1", "kind": "receipt", "fmt": "csv", "name": "bpmn-js.css"}


def _path(rule: str, target: dict[str, str], procedure: str = PROCEDURE) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        if name == "code" and ("/designer/" in rule or "/procedures/" in rule or "/process-models/" in rule):
            return procedure
        if name == "code" and rule.startswith("/lang/"):
            return "vi"
        return target[name]

    return re.sub(r"<([^>]+)>", value, rule)


def _clients(app) -> dict[str, tuple[object, dict[str, str]]]:
    """Per kind of user: a browser session (pages) and a bearer token (API)."""
    clients = {"anonymous": (app.test_client(), {})}
    for who, username in USERS.items():
        client = app.test_client()
        headers = {"Authorization": "Bearer " + api_token(client, username, DEMO_PASSWORD)}
        if who != "citizen":
            page_login(app, username, client)
        clients[who] = (client, headers)
    return clients


def _routes(app) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(OUTSIDE) or rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return sorted(found)


def test_every_route_has_a_row_in_the_matrix(app):
    missing = [route for route in _routes(app) if route not in MATRIX and route not in SKIPPED]
    assert not missing, f"say who may call: {missing}"
    stale = [route for route in MATRIX if route not in _routes(app)]
    assert not stale, f"the matrix names routes that do not exist: {stale}"


def test_each_kind_of_user_gets_exactly_what_the_matrix_allows(app, target):
    clients = _clients(app)
    wrong: list[str] = []
    for method, rule in _routes(app):
        if (method, rule) in SKIPPED:
            continue
        path = _path(rule, target)
        for who in WHO:
            client, headers = clients[who]
            api = rule.startswith("/api/")
            if method == "GET":
                response = client.get(path, headers=headers if api else {})
            elif api:
                response = client.post(path, headers=headers, json={})
            else:
                response = client.post(path, data={"csrf_token": csrf_of(client)})
            status = response.status_code
            response.close()  # a file sent by the app is closed with its response
            if status >= 500:
                wrong.append(f"{method} {path} as {who}: {status}")
                continue
            if MATRIX[(method, rule)] is PUBLIC:
                continue
            to_login = status == 302 and "/login" in response.headers.get("Location", "")
            if not api:
                with client.session_transaction() as session:
                    session.pop("_flashes", None)  # a refused form's reason, not for the next request
            refused = status in (401, 403) or to_login
            allowed = who in MATRIX[(method, rule)]
            if allowed and refused:
                wrong.append(f"{method} {path} as {who}: refused ({status}) but the matrix allows it")
            elif not allowed and not refused:
                wrong.append(f"{method} {path} as {who}: {status} but the matrix refuses it")
    assert not wrong, "\n".join(wrong)
