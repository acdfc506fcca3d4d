"""Back-office pages through the Flask test client: login with lockout and the leaders' second
factor, CSRF, security headers, scoping of pages by unit and role, task forms with field errors,
reassignment, bulk claim, batch approval, and Flask-Admin access for each role."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from backoffice.app import create_app
from connectors import build_registry
from engine import catalogue, clock, jobs, services
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, CalendarEntry, Dossier, Task, User
from scripts.seed import DEMO_PASSWORD, _seed_accounts

PROCEDURE = "marital_status_confirmation"
FORM = {"purpose": "Kết hôn", "residence": "Thôn Đông, xã An Hòa Thịnh"}
APPLICANT = {"type": "individual", "full_name": "Phạm Thị Dung", "id_number": "001199000111", "phone": "0903334444"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("views") / "views.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE),
                                 actor=services.SYSTEM_ACTOR)
    yield application
    application.extensions["motcua"].engine.dispose()


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ))


def _factory(app):
    return app.extensions["motcua"].factory


def _submit(app, unit: str = "anhoathinh") -> str:
    with transaction(_factory(app)) as session:
        code = services.submit_dossier(session, procedure_code=PROCEDURE, unit_code=unit, applicant=APPLICANT,
                                       form=FORM, channel="counter", actor=services.SYSTEM_ACTOR).code
    jobs.drain(_factory(app), build_registry(Settings(env="test"), _factory(app)), lease=timedelta(seconds=30))
    return code


def _task(app, code: str) -> Task:
    with transaction(_factory(app)) as session:
        task = session.scalar(select(Task).join(Dossier, Dossier.id == Task.dossier_id)
                              .where(Dossier.code == code, Task.state == "ready", Task.kind == "user"))
        session.expunge(task)
    return task


def _csrf(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                           "csrf_token": _csrf(client)})
    if username.startswith("leader."):
        with transaction(_factory(app)) as session:
            user = session.scalar(select(User).where(User.username == username))
            if not user.totp_secret:
                user.totp_secret = pyotp.random_base32()
            user.totp_last_step = None
            secret = user.totp_secret
        response = client.post("/login/otp", data={"otp": pyotp.TOTP(secret).at(clock.now()),
                                                   "csrf_token": _csrf(client, "/login/otp")})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    client.csrf = _csrf(client)
    return client


def _post(client, path: str, data: dict | None = None):
    return client.post(path, data={**(data or {}), "csrf_token": client.csrf})


# --- login -----------------------------------------------------------------------------------

def test_login_sends_officers_to_their_inbox_and_sets_a_safe_cookie(app):
    client = app.test_client()
    response = client.post("/login", data={"username": "onestop.anhoathinh", "password": DEMO_PASSWORD,
                                           "csrf_token": _csrf(client)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/inbox"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.get("/inbox").status_code == 200


def test_wrong_password_is_refused_and_five_failures_lock_the_account(app):
    client = app.test_client()
    for _ in range(5):
        response = client.post("/login", data={"username": "culture.luongphong", "password": "wrong",
                                               "csrf_token": _csrf(client)})
        assert response.status_code == 401
    response = client.post("/login", data={"username": "culture.luongphong", "password": DEMO_PASSWORD,
                                           "csrf_token": _csrf(client)})
    assert response.status_code == 401  # locked: even the right password is refused for 15 minutes
    with transaction(_factory(app)) as session:
        user = session.scalar(select(User).where(User.username == "culture.luongphong"))
        assert user.locked_until is not None
        user.locked_until = None


def test_next_parameter_never_leaves_the_site(app):
    client = app.test_client()
    response = client.post("/login", data={"username": "justice.anhoathinh", "password": DEMO_PASSWORD,
                                           "next": "https://evil.example/", "csrf_token": _csrf(client)})
    assert response.headers["Location"] == "/inbox"


def test_a_leader_enrols_a_second_factor_then_needs_it_and_a_code_works_once(app):
    with transaction(_factory(app)) as session:
        user = session.scalar(select(User).where(User.username == "leader.luongphong"))
        user.totp_secret = None
    client = app.test_client()
    response = client.post("/login", data={"username": "leader.luongphong", "password": DEMO_PASSWORD,
                                           "csrf_token": _csrf(client)})
    assert response.headers["Location"] == "/login/totp"
    assert client.get("/inbox").status_code == 302  # not logged in before the second step
    page = client.get("/login/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert "<svg" in page  # the QR code
    bad = client.post("/login/totp", data={"otp": "000000", "csrf_token": _csrf(client, "/login/totp")})
    assert bad.status_code == 422
    code = pyotp.TOTP(secret).at(clock.now())
    response = client.post("/login/totp", data={"otp": code, "csrf_token": _csrf(client, "/login/totp")})
    assert response.status_code == 302
    assert client.get("/inbox").status_code == 200

    # Next login: password, then the code from the app; the same code cannot be used again.
    again = app.test_client()
    again.post("/login", data={"username": "leader.luongphong", "password": DEMO_PASSWORD,
                               "csrf_token": _csrf(again)})
    replay = again.post("/login/otp", data={"otp": code, "csrf_token": _csrf(again, "/login/otp")})
    assert replay.status_code == 401
    clock.freeze(clock.now() + timedelta(seconds=60))
    fresh = again.post("/login/otp", data={"otp": pyotp.TOTP(secret).at(clock.now()),
                                           "csrf_token": _csrf(again, "/login/otp")})
    assert fresh.status_code == 302
    assert again.get("/approvals").status_code == 200


def test_api_login_of_a_leader_asks_for_the_second_factor(app):
    client = app.test_client()
    with transaction(_factory(app)) as session:
        user = session.scalar(select(User).where(User.username == "leader.anhoathinh"))
        user.totp_secret = None
    response = client.post("/api/v1/auth/login", json={"username": "leader.anhoathinh", "password": DEMO_PASSWORD})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "totp_enrolment_required"
    with transaction(_factory(app)) as session:
        user = session.scalar(select(User).where(User.username == "leader.anhoathinh"))
        user.totp_secret = secret = pyotp.random_base32()
        user.totp_last_step = None
    response = client.post("/api/v1/auth/login", json={"username": "leader.anhoathinh", "password": DEMO_PASSWORD})
    assert response.get_json() == {"otp_required": True, "method": "totp"}
    wrong = client.post("/api/v1/auth/login", json={"username": "leader.anhoathinh", "password": DEMO_PASSWORD,
                                                     "otp": "123456"})
    assert wrong.status_code == 401
    assert "otp" in wrong.get_json()["error"]["fields"]
    right = client.post("/api/v1/auth/login", json={"username": "leader.anhoathinh", "password": DEMO_PASSWORD,
                                                     "otp": pyotp.TOTP(secret).at(clock.now())})
    assert right.status_code == 200
    assert "token" in right.get_json()


# --- CSRF and headers ---------------------------------------------------------------------------

def test_a_form_post_without_the_csrf_token_is_refused_and_changes_nothing(app):
    code = _submit(app)
    task = _task(app, code)
    client = _login(app, "onestop.anhoathinh")
    response = client.post(f"/tasks/{task.id}/claim")  # no token
    assert response.status_code == 400
    response = client.post(f"/tasks/{task.id}/claim", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert _task(app, code).assignee_id is None


def test_pages_send_security_headers(app):
    response = app.test_client().get("/login")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


# --- scoping ------------------------------------------------------------------------------------

PAGES = ["inbox", "task", "case", "approvals", "admin"]
# status for a page about the caller's own unit, and about the other unit (302 = sent to log in)
EXPECTED = {
    ("onestop", "inbox"): (200, 200), ("onestop", "task"): (200, 403), ("onestop", "case"): (200, 403),
    ("onestop", "approvals"): (403, 403), ("onestop", "admin"): (403, 403),
    ("justice", "inbox"): (200, 200), ("justice", "task"): (403, 403), ("justice", "case"): (200, 403),
    ("justice", "approvals"): (403, 403), ("justice", "admin"): (403, 403),
    ("leader", "inbox"): (200, 200), ("leader", "task"): (403, 403), ("leader", "case"): (200, 403),
    ("leader", "approvals"): (200, 200), ("leader", "admin"): (403, 403),
    ("auditor", "inbox"): (403, 403), ("auditor", "task"): (403, 403), ("auditor", "case"): (200, 200),
    ("auditor", "approvals"): (403, 403), ("auditor", "admin"): (403, 403),
    ("admin", "inbox"): (403, 403), ("admin", "task"): (403, 403), ("admin", "case"): (403, 403),
    ("admin", "approvals"): (403, 403), ("admin", "admin"): (200, 200),
    ("anonymous", "inbox"): (302, 302), ("anonymous", "task"): (302, 302), ("anonymous", "case"): (302, 302),
    ("anonymous", "approvals"): (302, 302), ("anonymous", "admin"): (302, 302),
}
USERS = {"onestop": "onestop.anhoathinh", "justice": "justice.anhoathinh", "leader": "leader.anhoathinh",
         "auditor": "auditor", "admin": "admin"}


@pytest.fixture(scope="module")
def page_cases(app):
    own, other = _submit(app, "anhoathinh"), _submit(app, "luongphong")
    return {"own": (own, _task(app, own).id), "other": (other, _task(app, other).id)}


@pytest.mark.parametrize("role", sorted({r for r, _ in EXPECTED}))
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("where", ["own", "other"])
def test_page_access_matrix(app, page_cases, role, page, where):
    client = app.test_client() if role == "anonymous" else _login(app, USERS[role])
    code, task_id = page_cases[where]
    path = {"inbox": "/inbox?tab=all", "task": f"/tasks/{task_id}", "case": f"/cases/{code}",
            "approvals": "/approvals", "admin": "/admin/admin_users/"}[page]
    response = client.get(path)
    assert response.status_code == EXPECTED[(role, page)][0 if where == "own" else 1], path
    if page == "inbox" and response.status_code == 200:
        assert page_cases["other"][0] not in response.get_data(as_text=True)


def test_the_page_matrix_covers_every_role_and_page():
    assert {(r, p) for r in {r for r, _ in EXPECTED} for p in PAGES} == set(EXPECTED)


# --- task work ----------------------------------------------------------------------------------

def test_invalid_task_form_shows_field_errors_and_changes_nothing(app):
    code = _submit(app)
    task = _task(app, code)
    client = _login(app, "onestop.anhoathinh")
    assert _post(client, f"/tasks/{task.id}/claim").status_code == 302
    response = _post(client, f"/tasks/{task.id}/complete", {"decision": "supplement", "note": ""})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="field has-error"' in page
    assert 'id="e-note"' in page
    still = _task(app, code)
    assert still.state == "ready"
    assert still.id == task.id
    response = _post(client, f"/tasks/{task.id}/complete", {"decision": "accept"})
    assert response.status_code == 302
    with transaction(_factory(app)) as session:
        assert session.get(Task, task.id).state == "completed"


def test_bulk_claim_takes_the_unclaimed_tasks_and_reports_the_rest(app):
    codes = [_submit(app), _submit(app)]
    tasks = [_task(app, c) for c in codes]
    other = _login(app, "onestop.anhoathinh")
    assert _post(other, f"/tasks/{tasks[1].id}/claim").status_code == 302
    with transaction(_factory(app)) as session:  # a second one-stop officer of the unit
        from tests.factories import create_user

        unit_id = session.scalar(select(User.unit_id).where(User.username == "onestop.anhoathinh"))
        from engine.models import Unit

        colleague = create_user(session, session.get(Unit, unit_id), "onestop", username="onestop2.anhoathinh")
        from engine.security import hash_password

        colleague.password_hash = hash_password(DEMO_PASSWORD)
    client = _login(app, "onestop2.anhoathinh")
    response = client.post("/inbox/claim", data={"task_id": [t.id for t in tasks], "csrf_token": client.csrf})
    assert response.status_code == 302
    assert _task(app, codes[0]).assignee_id is not None
    assert _task(app, codes[1]).assignee_id != \
        _task(app, codes[0]).assignee_id
    flashes = client.get("/inbox").get_data(as_text=True)
    assert "flash ok" in flashes
    assert "flash error" in flashes


def test_a_leader_reassigns_an_open_task_within_the_unit_only(app):
    code = _submit(app)
    task = _task(app, code)
    leader = _login(app, "leader.anhoathinh")
    with transaction(_factory(app)) as session:
        onestop = session.scalar(select(User.id).where(User.username == "onestop.anhoathinh"))
        foreign = session.scalar(select(User.id).where(User.username == "onestop.luongphong"))
        justice = session.scalar(select(User.id).where(User.username == "justice.anhoathinh"))
    assert _post(leader, f"/tasks/{task.id}/reassign", {"assignee": foreign}).status_code == 302
    assert _task(app, code).assignee_id is None  # another unit's officer: refused
    assert _post(leader, f"/tasks/{task.id}/reassign", {"assignee": justice}).status_code == 302
    assert _task(app, code).assignee_id is None  # lacks the one-stop role: refused
    assert _post(leader, f"/tasks/{task.id}/reassign", {"assignee": onestop}).status_code == 302
    assert _task(app, code).assignee_id == onestop
    officer = _login(app, "onestop.anhoathinh")
    assert _post(officer, f"/tasks/{task.id}/reassign", {"assignee": onestop}).status_code == 403
    with transaction(_factory(app)) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "task_reassigned", AuditEvent.dossier_code == code)) == 1


def _to_approval(app, code: str) -> str:
    """Walk a dossier through receipt and appraisal; the leader's approval task id."""
    for username, data in (("onestop.anhoathinh", {"decision": "accept"}),
                           ("justice.anhoathinh", {"decision": "propose_approve"})):
        task = _task(app, code)
        client = _login(app, username)
        _post(client, f"/tasks/{task.id}/claim")
        response = _post(client, f"/tasks/{task.id}/complete", data)
        assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
        jobs.drain(_factory(app), build_registry(Settings(env="test"), _factory(app)), lease=timedelta(seconds=30))
    task = _task(app, code)
    assert task.form_key == "approve"
    return task.id


def test_batch_approval_approves_the_selected_results_with_their_drafts_shown(app):
    codes = [_submit(app), _submit(app)]
    task_ids = [_to_approval(app, c) for c in codes]
    leader = _login(app, "leader.anhoathinh")
    page = leader.get("/approvals").get_data(as_text=True)
    assert all(c in page for c in codes)
    draft = leader.get(f"/tasks/{task_ids[0]}").get_data(as_text=True)
    assert 'id="draft-result"' in draft
    response = leader.post("/approvals", data={"task_id": task_ids, "csrf_token": leader.csrf})
    assert response.status_code == 302
    with transaction(_factory(app)) as session:
        states = session.scalars(select(Task.state).where(Task.id.in_(task_ids))).all()
    assert states == ["completed", "completed"]


def test_case_page_shows_control_sheet_timeline_and_diagram(app):
    code = _submit(app)
    _to_approval(app, code)
    client = _login(app, "onestop.anhoathinh")
    page = client.get(f"/cases/{code}").get_data(as_text=True)
    assert 'id="control-sheet"' in page
    assert page.count("result-") >= 2
    assert 'data-bpmn="bpmn-1"' in page
    marked = [json.loads(m) for m in re.findall(r'id="markers-\d+">([^<]+)<', page)]
    assert {"receive": "completed"}.items() <= {k: v for m in marked for k, v in m.items()}.items()
    assert any(v == "active" for m in marked for v in m.values())  # the leader's approval
    vendor = client.get("/vendor/bpmn-navigated-viewer.js")
    assert vendor.status_code == 200
    assert b"BpmnJS" in vendor.get_data()
    vendor.close()
    assert client.get("/vendor/../../etc/passwd").status_code == 404


# --- admin --------------------------------------------------------------------------------------

def test_admin_holiday_change_is_audited_and_moves_deadlines(app):
    admin = _login(app, "admin")
    form = admin.get("/admin/admin_calendar/new/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    response = admin.post("/admin/admin_calendar/new/", data={"day": "2026-12-01", "kind": "holiday",
                                                              "name": "Ngày nghỉ thử", "csrf_token": token})
    assert response.status_code == 302
    with transaction(_factory(app)) as session:
        from datetime import date

        assert session.get(CalendarEntry, date(2026, 12, 1)) is not None
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "admin_created", AuditEvent.actor == "admin")) >= 1
        assert not services.calendar_for(session).is_working_day(date(2026, 12, 1))
    forged = admin.post("/admin/admin_calendar/new/", data={"day": "2026-12-02", "kind": "holiday",
                                                            "name": "x", "csrf_token": "forged"})
    assert forged.status_code == 200  # the form is shown again with its error
    with transaction(_factory(app)) as session:
        from datetime import date

        assert session.get(CalendarEntry, date(2026, 12, 2)) is None


def test_admin_sends_a_failed_delivery_again(app):
    from datetime import datetime as dt

    from engine.calendar import VN_TZ
    from engine.models import ServiceCall

    code = _submit(app)
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        moment = dt(2026, 11, 16, 9, 0, tzinfo=VN_TZ)
        session.add(ServiceCall(id="00000000-0000-0000-0000-00000000f001", dossier_id=dossier.id,
                                operation="notify.status_changed", params={"to": "0900000001"}, status="failed",
                                attempts=8, error="gateway down", created_at=moment, next_attempt_at=moment,
                                finished_at=moment))
    assert _login(app, "onestop.anhoathinh").get("/admin/admin_deliveries/").status_code == 403
    admin = _login(app, "admin")
    page = admin.get("/admin/admin_deliveries/?flt0_0=failed").get_data(as_text=True)
    assert "gateway down" in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = admin.post("/admin/admin_deliveries/action/", data={
        "action": "retry", "rowid": "00000000-0000-0000-0000-00000000f001", "csrf_token": token})
    assert response.status_code == 302
    with transaction(_factory(app)) as session:
        call = session.get(ServiceCall, "00000000-0000-0000-0000-00000000f001")
        assert (call.status, call.attempts, call.finished_at) == ("pending", 0, None)
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "service_call_retried"))
        assert (event.actor, event.data["last_error"]) == ("admin", "gateway down")
    with transaction(_factory(app)) as session:
        session.get(ServiceCall, "00000000-0000-0000-0000-00000000f001").status = "failed"
    admin.post("/admin/admin_deliveries/action/", data={
        "action": "retry", "rowid": "00000000-0000-0000-0000-00000000f001", "csrf_token": "forged"})
    with transaction(_factory(app)) as session:  # a forged form changes nothing
        assert session.get(ServiceCall, "00000000-0000-0000-0000-00000000f001").status == "failed"
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "service_call_retried")) == 1


# --- reception ----------------------------------------------------------------------------------

def _count(app, model) -> int:
    with transaction(_factory(app)) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_the_one_stop_officer_receives_a_walk_in_dossier_with_its_scan(app):
    import io

    from engine.models import Attachment

    client = _login(app, "onestop.anhoathinh")
    page = client.get(f"/reception?procedure={PROCEDURE}").get_data(as_text=True)
    assert 'name="purpose"' in page  # the procedure's own form
    before = (_count(app, Dossier), _count(app, Attachment))
    bad = client.post("/reception", data={"procedure": PROCEDURE, "csrf_token": client.csrf, "purpose": "Kết hôn",
                                          "applicant_full_name": "", "channel": "counter"})
    assert bad.status_code == 422
    assert '<div class="field has-error"><label for="a-full_name">' in bad.get_data(as_text=True)
    wrong_type = client.post("/reception", data={
        "procedure": PROCEDURE, "csrf_token": client.csrf, **FORM, "applicant_full_name": "Lê Văn Cường",
        "attachments": (io.BytesIO(b"MZ not a pdf"), "to-khai.pdf", "application/pdf")},
        content_type="multipart/form-data")
    assert wrong_type.status_code == 422
    assert (_count(app, Dossier), _count(app, Attachment)) == before  # nothing stored
    good = client.post("/reception", data={
        "procedure": PROCEDURE, "csrf_token": client.csrf, **FORM, "applicant_full_name": "Lê Văn Cường",
        "applicant_phone": "0905556666", "channel": "counter", "delivery": "counter",
        "attachments": (io.BytesIO(b"%PDF-1.4\n%test\n"), "to-khai.pdf", "application/pdf")},
        content_type="multipart/form-data")
    assert good.status_code == 302
    code = good.headers["Location"].rsplit("/", 1)[-1]
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier.channel == "counter"
        assert dossier.applicant_name == "Lê Văn Cường"
        assert session.scalar(select(func.count()).select_from(Attachment)
                              .where(Attachment.dossier_id == dossier.id)) == 1
    case = client.get(f"/cases/{code}").get_data(as_text=True)
    assert "to-khai.pdf" in case


def test_only_one_stop_officers_receive_dossiers(app):
    assert _login(app, "justice.anhoathinh").get("/reception").status_code == 403
