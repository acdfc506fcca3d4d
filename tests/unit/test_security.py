"""Security checks (issue 10): CSRF on every state-changing page form and no cookie-authenticated
API, security headers on every kind of response, upload limits on the page forms, rate limits on
logins and one-time codes (429/423 with Retry-After, reset, no bypass), no secrets in the logs, and
production refusing default secrets.

Covered elsewhere and not repeated here: a task claim with a missing or forged token, Flask-Admin
create and action with a forged token, the login cookie's HttpOnly and SameSite=Lax and the lockout
after five wrong passwords (tests/unit/test_views.py, test_api.py); the designer's JSON calls
without X-CSRF-Token (test_designer_pages.py); API bodies over the limit, wrong attachment types and
too many attachments through /api/v1/dossiers (test_dossier_api.py); the SMS code limits per phone,
per address and per code (test_citizens.py, test_portal.py); production refusing a default or short
MOTCUA_SECRET_KEY, sandboxes, SQLite and the embedded worker (test_config.py, test_deployment.py);
who may call what (test_authorization.py); generated API requests (test_api_schema_fuzz.py).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import re
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask, request
from sqlalchemy import func, select

from backoffice import security
from backoffice.app import app_factory, create_app
from connectors.http import sign
from engine import citizens, clock, services
from engine.calendar import VN_TZ
from engine.config import DEFAULT_SECRET, ConfigError, Settings
from engine.db import transaction
from engine.models import Attachment, Base, Dossier, User
from scripts.cli import main
from scripts.seed import CITIZEN, DEMO_PASSWORD
from tests.factories import (
    COUNTER_FORM,
    DEMO_PROCEDURE,
    api_login_body,
    counter_case,
    csrf_of,
    demo_app,
    page_login,
    sms_code,
)

PROCEDURE = DEMO_PROCEDURE
FORM = COUNTER_FORM
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
# Distinctive values, so that finding one in a log is not a coincidence.
SECRET_KEY = "session-key-" + secrets.token_hex(16)
PAYMENT_SECRET = "payment-hmac-" + secrets.token_hex(12)
START = datetime(2026, 11, 16, 8, 0, tzinfo=VN_TZ)  # a Monday
_hours = itertools.count()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from demo_app(tmp_path_factory, "security", sandbox=True, secret_key=SECRET_KEY,
                        payment_secret=PAYMENT_SECRET)


@pytest.fixture(autouse=True)
def _later(app):
    """Each test two hours after the previous one: earlier lockouts (15 minutes) and hourly code
    quotas are over, and every TOTP code is new."""
    clock.freeze(START + timedelta(hours=2 * next(_hours)))


@pytest.fixture(scope="module")
def target(app) -> dict[str, str]:
    """An Hòa Thịnh's counter dossier and its open one-stop task."""
    clock.freeze(START)
    code, task_id = counter_case(app)
    return {"code": code, "task_id": task_id, "attachment_id": "1", "document_id": "1", "consent_id": "1",
            "number": "1", "kind": "receipt", "fmt": "csv", "export_type": "csv"}


# --- helpers ------------------------------------------------------------------------------------

def _factory(app):
    return app.extensions["motcua"].factory


def _portal_login(app):
    """A browser session of the demo citizen: password, then the SMS code."""
    client = app.test_client()
    response = client.post("/portal/login", data={"id_number": CITIZEN["username"], "password": DEMO_PASSWORD,
                                                  "csrf_token": csrf_of(client, "/portal/login")})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    response = client.post("/portal/code", data={"otp": sms_code(app, CITIZEN["phone"]),
                                                 "csrf_token": csrf_of(client, "/portal/code")})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def _snapshot(app) -> str:
    """A fingerprint of every row of every table: equal before and after means nothing changed."""
    digest = hashlib.sha256()
    with _factory(app)() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def _count(app, model) -> int:
    with _factory(app)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _path(rule: str, target: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[-1]
        if name == "code" and rule.startswith(("/designer/", "/portal/procedures/")):
            return PROCEDURE
        if name == "code" and rule.startswith("/lang/"):
            return "en"
        return target[name]

    return re.sub(r"<([^>]+)>", value, rule)


# --- CSRF ---------------------------------------------------------------------------------------

# Not our pages' forms: the API takes bearer tokens (checked below), the sandboxes play providers
# and are never mounted in production.
CSRF_NOT_PAGES = ("/api/", "/sandbox/")
# A body that would pass each page's own checks, so that only the missing token can stop it.
PAGE_BODY = {
    "username": "onestop.anhoathinh", "password": DEMO_PASSWORD, "id_number": CITIZEN["username"],
    "procedure": PROCEDURE, "unit": "anhoathinh", "declaration": "1", "delivery": "counter",
    "applicant_full_name": "Lê Văn Cường", "applicant_type": "individual", **FORM, "decision": "accept",
    "reason": "thử", "comment": "thử", "amount": "10000", "next": "/",
    # Flask-Admin: a unit, a holiday, a setting, a user; edit/delete/action on row 1
    "code": "csrfunit", "name": "UBND xã Thử", "agency_code": "000.00.99.H99", "day": "2026-12-24",
    "kind": "holiday", "key": "csrf.test", "value": "x", "full_name": "Thử Nghiệm", "id": "1", "rowid": "1",
    "action": "unlock", "url": "/admin/",
}


ADMIN_KEYS = {"admin_calendar": "2026-01-01", "admin_targets": "1,2026"}


def _page_posts(app: Flask) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if "POST" in rule.methods and not rule.rule.startswith(CSRF_NOT_PAGES))


def _who_posts(rule: str) -> str:
    """Who may send each form, so that the token is the only thing missing."""
    if rule.startswith("/portal/"):
        return "citizen"
    if rule.startswith("/designer/"):
        return "designer"
    if rule.startswith("/admin"):
        return "admin"
    if rule in ("/approvals", "/tasks/<task_id>/reassign"):
        return "leader"
    return "onestop"


def test_every_page_form_refuses_a_post_without_or_with_a_wrong_csrf_token(app, target, monkeypatch):
    rules = _page_posts(app)
    # Every kind of page is in the walk: login, logout, task form, Flask-Admin, designer, portal.
    for expected in ("/login", "/login/otp", "/login/totp", "/logout", "/tasks/<task_id>/complete",
                     "/reception", "/designer/<code>/draft", "/designer/<code>/deploy", "/portal/login",
                     "/portal/procedures/<code>/submit", "/portal/register", "/portal/code"):
        assert expected in rules
    assert any(rule.startswith("/admin/") and rule.endswith("/new/") for rule in rules)
    clients = {"citizen": _portal_login(app), "designer": page_login(app, "designer"),
               "admin": page_login(app, "admin"), "leader": page_login(app, "leader.anhoathinh"),
               "onestop": page_login(app, "onestop.anhoathinh")}
    refusals: list[str] = []  # the CSRF check itself refused, not a form error that also answers 400
    check = security.abort

    def csrf_abort(code: int, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("description") == "csrf":
            refusals.append(request.path)
        return check(code, *args, **kwargs)

    monkeypatch.setattr(security, "abort", csrf_abort)
    wrong = []
    for rule in rules:
        client = clients[_who_posts(rule)]
        path = _path(rule, target)
        if rule.startswith("/admin/") and rule.endswith(("/edit/", "/delete/", "/details/")):
            # The keys of the rows as Flask-Admin's links write them: a holiday's day, a target's unit and year.
            path += "?id=" + next((key for view, key in ADMIN_KEYS.items() if view in rule), "1")
        for token in (None, "forged-" + secrets.token_urlsafe(8)):
            before = _snapshot(app)
            data = dict(PAGE_BODY) if token is None else {**PAGE_BODY, "csrf_token": token}
            headers = {} if token is None else {"X-CSRF-Token": token}
            refused_before = len(refusals)
            response = client.post(path, data=data, headers=headers)
            if rule.startswith("/admin/"):
                # Flask-Admin checks its own form token: the form comes back or the list, unchanged.
                refused = response.status_code in (200, 302, 400, 403, 404)
            else:
                refused = (response.status_code == 400 and "text/html" in response.content_type
                           and len(refusals) == refused_before + 1)
            if not refused or _snapshot(app) != before:
                wrong.append((rule, token is not None, response.status_code))
            response.close()
    assert not wrong, f"accepted without the right CSRF token (rule, forged, status): {wrong}"


def test_login_and_logout_need_the_token_and_work_with_it(app):
    # Login CSRF: a cross-site form must not log the browser into someone's account.
    client = app.test_client()
    refused = client.post("/login", data={"username": "onestop.anhoathinh", "password": DEMO_PASSWORD})
    assert refused.status_code == 400
    assert client.get("/inbox").status_code == 302  # still logged out
    page = client.post("/login", data={"username": "onestop.anhoathinh", "password": DEMO_PASSWORD,
                                       "csrf_token": csrf_of(client)})
    assert page.status_code == 302
    assert client.get("/inbox").status_code == 200
    # Logout CSRF: a cross-site form must not end the session either.
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/inbox").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_of(client, "/inbox")}).status_code == 302
    assert client.get("/inbox").status_code == 302


# Open API routes (API.md): they take no session and no token; their refusal is their point.
API_PUBLIC_POSTS = {"/api/v1/auth/login", "/api/v1/auth/otp", "/api/v1/citizens", "/api/v1/citizens/verify",
                    "/api/v1/citizens/otp/resend", "/api/v1/citizens/password-reset",
                    "/api/v1/citizens/password-reset/confirm", "/api/v1/connectors/payment/callback",
                    "/api/v1/connectors/postal/callback"}


def test_a_browser_session_does_not_authenticate_the_api(app, target):
    """The API reads only ``Authorization: Bearer``: a logged-in browser (cookie, even with the CSRF
    token) calling /api/v1 is anonymous, so a cross-site request cannot ride on the session."""
    officer = page_login(app, "onestop.anhoathinh")  # may claim and complete the task through the pages
    token = csrf_of(officer, "/inbox")
    posts = sorted(rule.rule for rule in app.url_map.iter_rules()
                   if "POST" in rule.methods and rule.rule.startswith("/api/v1/")
                   and not rule.rule.startswith("/api/v1/test/") and rule.rule not in API_PUBLIC_POSTS)
    assert {"/api/v1/tasks/<task_id>/claim", "/api/v1/dossiers"} <= set(posts)
    wrong = []
    for rule in posts:
        before = _snapshot(app)
        response = officer.post(_path(rule, target), json={"data": {"decision": "accept"}},
                                headers={"X-CSRF-Token": token})
        if response.status_code != 401 or _snapshot(app) != before:
            wrong.append((rule, response.status_code))
    assert not wrong, f"the session cookie opened the API: {wrong}"
    assert officer.get("/api/v1/me/dossiers").status_code == 401
    # The same officer with a bearer token is let in (the refusal above is about the cookie).
    api = app.test_client()
    bearer = api.post("/api/v1/auth/login", json={"username": "onestop.anhoathinh", "password": DEMO_PASSWORD})
    headers = {"Authorization": "Bearer " + bearer.get_json()["token"]}
    assert api.get("/api/v1/tasks", headers=headers).status_code == 200


def test_the_open_api_takes_json_only_and_allows_no_other_origin(app):
    """A cross-site HTML form can send form-encoded or text/plain bodies without a CORS preflight:
    the API does not read them, and it never answers with Access-Control-Allow-Origin."""
    client = app.test_client()
    credentials = {"username": "onestop.anhoathinh", "password": DEMO_PASSWORD}
    origin = {"Origin": "https://evil.example"}
    as_text = client.post("/api/v1/auth/login", data=json.dumps(credentials), content_type="text/plain",
                          headers=origin)
    as_form = client.post("/api/v1/auth/login", data=credentials, headers=origin)
    as_json = client.post("/api/v1/auth/login", json=credentials, headers=origin)
    assert (as_text.status_code, as_form.status_code, as_json.status_code) == (422, 422, 200)
    assert [answer.get_json()["error"]["code"] for answer in (as_text, as_form)] == ["invalid_data"] * 2
    for response in (as_text, as_form, as_json, client.options("/api/v1/auth/login", headers=origin)):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers


# --- security headers ---------------------------------------------------------------------------

def _csp(response) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy", "")
    directives = [part.split() for part in policy.split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


def _assert_safe_headers(response, *, admin: bool = False) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("X-Frame-Options") in ("SAMEORIGIN", "DENY")
    assert headers.get("Referrer-Policy") in ("same-origin", "strict-origin", "strict-origin-when-cross-origin",
                                              "no-referrer")
    csp = _csp(response)
    assert csp.get("default-src") == ["'self'"]
    assert csp.get("object-src") == ["'none'"]
    assert csp.get("base-uri") == ["'self'"]
    assert csp.get("form-action") == ["'self'"]
    assert csp.get("frame-ancestors") in (["'self'"], ["'none'"])
    scripts = csp.get("script-src", [])
    allowed = {"'self'", "'unsafe-inline'"} if admin else {"'self'"}
    assert scripts, "no script-src"
    assert set(scripts) <= allowed, scripts  # no other host, no eval, no data:


def test_every_kind_of_response_carries_the_security_headers(app, target, monkeypatch):
    client = app.test_client()
    responses = {
        "page": client.get("/login"),
        "portal page": client.get("/portal/login"),
        "public page": client.get("/portal/track"),
        "API": client.get("/api/v1/units"),
        "API document": client.get("/api/v1/openapi.json"),
        "API error": client.get("/api/v1/no-such-thing"),
        "API unauthorized": client.get("/api/v1/tasks"),
        "static file": client.get("/static/app.js"),
        "vendor file": client.get("/vendor/bpmn-js.css"),
        "404 page": client.get("/no-such-page"),
        "405 page": client.get("/logout"),
        "CSRF 400 page": client.post("/login", data={"username": "x"}),
    }
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    responses["413 page"] = client.post("/login", data={"username": "x" * 2000})
    responses["413 API"] = client.post("/api/v1/auth/login", data=b"{" + b" " * 2000 + b"}",
                                       content_type="application/json")
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {"page": 200, "portal page": 200, "public page": 200, "API": 200, "API document": 200,
                        "API error": 404, "API unauthorized": 401, "static file": 200, "vendor file": 200,
                        "404 page": 404, "405 page": 405, "CSRF 400 page": 400, "413 page": 413, "413 API": 413}
    for name, response in responses.items():
        try:
            _assert_safe_headers(response)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
        finally:
            response.close()
    admin = page_login(app, "admin")
    for path in ("/admin/", "/admin/admin_units/"):
        page = admin.get(path)
        assert page.status_code == 200
        _assert_safe_headers(page, admin=True)


def test_our_templates_have_no_inline_script_so_the_policy_holds():
    """script-src 'self' blocks inline scripts and event handlers: the pages must have none (JSON
    data blocks are not scripts)."""
    found = []
    for template in sorted(Path("backoffice/templates").rglob("*.html")):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                found.append(f"{template}: {tag}")
        found += [f"{template}: {m}" for m in re.findall(r"<[^>]*\son[a-z]+\s*=[^>]*>", text)]
        found += [f"{template}: {m}" for m in re.findall(r"javascript:", text, flags=re.IGNORECASE)]
    assert not found


def test_production_adds_hsts_and_a_secure_session_cookie(app):
    # replace(): the settings are not validated again — production's PostgreSQL and Celery are
    # refused or required by engine.config (tested below); here only the answers are looked at.
    settings = replace(app.extensions["motcua"].settings, env="production", sandbox=False)
    production = create_app(settings)
    try:
        client = production.test_client()
        login = client.get("/login")  # starts a session: its CSRF token
        for response in (login, client.get("/api/v1/units"), client.get("/no-such-page")):
            hsts = response.headers.get("Strict-Transport-Security", "")
            assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000
            _assert_safe_headers(response)
        cookie = login.headers["Set-Cookie"]
        assert cookie.startswith("motcua_session=")
        assert {"Secure", "HttpOnly", "SameSite=Lax"} <= {part.strip() for part in cookie.split(";")}
    finally:
        production.extensions["motcua"].engine.dispose()
    # Outside production the cookie works over plain http (make run) and no HSTS pins the host.
    local = app.test_client().get("/login")
    assert "Secure" not in local.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in local.headers


# --- upload limits on the page forms ------------------------------------------------------------

def _portal_submission(**files) -> dict:
    return {"unit": "anhoathinh", "declaration": "1", "delivery": "counter", "applicant_type": "individual",
            **FORM, **files}


def _upload(content: bytes, name: str = "to-khai.pdf", mime: str = "application/pdf"):
    return (io.BytesIO(content), name, mime)


def test_portal_uploads_are_limited_in_size_type_and_number(app, monkeypatch):
    client = _portal_login(app)
    submit = f"/portal/procedures/{PROCEDURE}/submit"
    token = csrf_of(client, submit)
    before = (_count(app, Dossier), _count(app, Attachment))

    # Too big: refused before the body is read, with the page saying why; nothing stored.
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 64 * 1024)
    big = client.post(submit, data=_portal_submission(csrf_token=token, attachments=[_upload(PDF + b" " * 100_000)]),
                      content_type="multipart/form-data")
    assert big.status_code == 413
    assert "Tệp tải lên quá lớn" in big.get_data(as_text=True)
    monkeypatch.undo()

    # An HTML page renamed .pdf: the browser says application/pdf, the first bytes say otherwise.
    html = client.post(submit, data=_portal_submission(
        csrf_token=token, attachments=[_upload(b"<html><script>alert(1)</script></html>")]),
        content_type="multipart/form-data")
    assert html.status_code == 422
    field = re.search(r'<span class="error" id="e-attachments"[^>]*>([^<]+)</span>', html.get_data(as_text=True))
    assert field is not None
    assert "application/pdf" in field.group(1)

    # Too many files (engine.services.MAX_ATTACHMENTS).
    many = client.post(submit, data=_portal_submission(
        csrf_token=token, attachments=[_upload(PDF, f"trang-{n}.pdf") for n in range(services.MAX_ATTACHMENTS + 1)]),
        content_type="multipart/form-data")
    assert many.status_code == 422
    field = re.search(r'<span class="error" id="e-attachments"[^>]*>([^<]+)</span>', many.get_data(as_text=True))
    assert field is not None
    assert str(services.MAX_ATTACHMENTS) in field.group(1)
    assert (_count(app, Dossier), _count(app, Attachment)) == before

    # The same form with one real PDF goes through: the refusals above were the files'.
    fine = client.post(submit, data=_portal_submission(csrf_token=token, attachments=[_upload(PDF)]),
                       content_type="multipart/form-data")
    assert fine.status_code == 302, fine.get_data(as_text=True)[:500]
    assert (_count(app, Dossier), _count(app, Attachment)) == (before[0] + 1, before[1] + 1)


def test_reception_uploads_are_limited_in_size_and_type(app, monkeypatch):
    officer = page_login(app, "onestop.anhoathinh")
    token = csrf_of(officer, f"/reception?procedure={PROCEDURE}")
    body = {"procedure": PROCEDURE, "csrf_token": token, **FORM, "applicant_full_name": "Lê Văn Cường",
            "applicant_phone": "0903334444", "delivery": "counter"}
    before = (_count(app, Dossier), _count(app, Attachment))
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 64 * 1024)
    big = officer.post("/reception", data={**body, "attachments": [_upload(PDF + b" " * 100_000)]},
                       content_type="multipart/form-data")
    assert big.status_code == 413
    assert "Tệp tải lên quá lớn" in big.get_data(as_text=True)
    monkeypatch.undo()
    html = officer.post("/reception", data={**body, "attachments": [_upload(b"<html><body>x</body></html>")]},
                        content_type="multipart/form-data")
    assert html.status_code == 422
    assert "attachments[0].content_base64" in html.get_data(as_text=True)  # the field is named
    assert (_count(app, Dossier), _count(app, Attachment)) == before


# --- rate limits --------------------------------------------------------------------------------

def _retry_after(response) -> int:
    assert "Retry-After" in response.headers, (response.status_code, response.headers)
    return int(response.headers["Retry-After"])


def test_api_login_lockout_says_when_to_retry_opens_again_and_cannot_be_dodged(app):
    client = app.test_client()
    username = "justice.luongphong"
    wrong = {"username": username, "password": "Wrong@" + secrets.token_hex(4)}
    for _ in range(4):
        response = client.post("/api/v1/auth/login", json=wrong)
        assert response.status_code == 401
        assert "Retry-After" not in response.headers
    fifth = client.post("/api/v1/auth/login", json=wrong)
    assert fifth.status_code == 423
    assert _retry_after(fifth) == 15 * 60
    right = {"username": username, "password": DEMO_PASSWORD}
    # Neither another spelling of the name, nor another claimed client address, nor waiting a
    # little gets a token while the account is locked.
    for attempt in ({"username": username.upper(), "password": DEMO_PASSWORD},
                    {"username": f"  {username} ", "password": DEMO_PASSWORD}):
        assert "token" not in (client.post("/api/v1/auth/login", json=attempt).get_json() or {})
    dodged = client.post("/api/v1/auth/login", json=right, headers={"X-Forwarded-For": "198.51.100.23"})
    assert dodged.status_code == 423
    clock.freeze(clock.now() + timedelta(minutes=14))
    later = client.post("/api/v1/auth/login", json=right)
    assert later.status_code == 423
    assert 0 < _retry_after(later) <= 60
    clock.freeze(clock.now() + timedelta(minutes=1, seconds=1))
    opened = client.post("/api/v1/auth/login", json=right)
    assert opened.status_code == 200
    assert "token" in opened.get_json()


def test_page_login_lockout_says_when_to_retry_and_opens_again(app):
    client = app.test_client()
    username = "culture.anhoathinh"
    for n in range(5):
        response = client.post("/login", data={"username": username, "password": "nope",
                                               "csrf_token": csrf_of(client)})
        assert response.status_code == 401
        assert ("Retry-After" in response.headers) == (n == 4)
    locked = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                         "csrf_token": csrf_of(client)}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert locked.status_code == 401
    assert 0 < _retry_after(locked) <= 15 * 60
    assert "15" in locked.get_data(as_text=True)  # the page says how long
    clock.freeze(clock.now() + timedelta(minutes=15, seconds=1))
    opened = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                         "csrf_token": csrf_of(client)})
    assert opened.status_code == 302


def test_leader_totp_guesses_lock_the_account_with_retry_after(app):
    client = app.test_client()
    body = api_login_body(app, "leader.luongphong", DEMO_PASSWORD)  # enrols a TOTP secret
    with transaction(_factory(app)) as session:
        secret = session.scalar(select(User.totp_secret).where(User.username == "leader.luongphong"))
    real = pyotp.TOTP(secret)
    guesses = [f"{n:06d}" for n in range(1000) if not any(
        real.at(clock.now() + timedelta(seconds=s)) == f"{n:06d}" for s in (-30, 0, 30))][:5]
    answers = [client.post("/api/v1/auth/login", json={**body, "otp": guess}) for guess in guesses]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
    assert _retry_after(answers[-1]) == 15 * 60
    locked = client.post("/api/v1/auth/login", json={**body, "otp": real.at(clock.now())})
    assert locked.status_code == 423
    assert 0 < _retry_after(locked) <= 15 * 60
    clock.freeze(clock.now() + timedelta(minutes=16))
    opened = client.post("/api/v1/auth/login", json={**body, "otp": real.at(clock.now())})
    assert opened.status_code == 200


def test_citizen_login_codes_are_rate_limited_with_retry_after_and_the_limit_resets(app, monkeypatch):
    monkeypatch.setattr(citizens, "OTP_PHONE_HOURLY", 2)
    api = app.test_client()
    login = {"username": CITIZEN["username"], "password": DEMO_PASSWORD}
    first = api.post("/api/v1/auth/login", json=login)
    assert first.get_json()["otp_required"] is True
    # Asking again at once: the resend waits a minute, and says so.
    resend = api.post("/api/v1/citizens/otp/resend", json={"id_number": CITIZEN["username"], "purpose": "login"})
    assert resend.status_code == 429
    assert 0 < _retry_after(resend) <= 60
    clock.freeze(clock.now() + timedelta(minutes=10))
    assert api.post("/api/v1/auth/login", json=login).status_code == 200  # the second code this hour
    limited = api.post("/api/v1/auth/login", json=login)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 50 * 60 - 5 <= _retry_after(limited) <= 50 * 60  # the first code leaves the hour in 50 minutes
    # The portal's login page meets the same limit, and says when to come back.
    portal = app.test_client()
    page = portal.post("/portal/login", data={"id_number": CITIZEN["username"], "password": DEMO_PASSWORD,
                                              "csrf_token": csrf_of(portal, "/portal/login")})
    assert page.status_code == 429
    assert _retry_after(page) == _retry_after(limited)
    clock.freeze(clock.now() + timedelta(minutes=50, seconds=1))
    assert api.post("/api/v1/auth/login", json=login).get_json()["otp_required"] is True


def test_citizen_code_guesses_lock_the_account_with_retry_after(app):
    api = app.test_client()
    login = {"username": CITIZEN["username"], "password": DEMO_PASSWORD}
    assert api.post("/api/v1/auth/login", json=login).get_json()["otp_required"] is True
    code = sms_code(app, CITIZEN["phone"])
    wrong = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 6)]
    answers = [api.post("/api/v1/auth/otp", json={"username": CITIZEN["username"], "otp": w}) for w in wrong]
    assert [a.status_code for a in answers] == [401] * 5
    locked = api.post("/api/v1/auth/login", json=login)
    assert locked.status_code == 423
    assert 0 < _retry_after(locked) <= 15 * 60
    assert api.post("/api/v1/auth/otp", json={"username": CITIZEN["username"], "otp": code}).status_code == 401
    clock.freeze(clock.now() + timedelta(minutes=16))
    assert api.post("/api/v1/auth/login", json=login).get_json()["otp_required"] is True


def _registration(n: int) -> dict[str, str]:
    return {"id_number": f"04230108{n:04d}", "full_name": "Trần Thị Bích", "date_of_birth": "2001-03-09",
            "phone": f"0987{n:06d}", "email": "", "password": "Bich@2001x"}


_registrations = itertools.count(1)


def test_the_address_limit_on_codes_ignores_forwarded_for_unless_a_proxy_is_configured(app, monkeypatch):
    monkeypatch.setattr(citizens, "OTP_IP_HOURLY", 2)
    client = app.test_client()
    answers = [client.post("/api/v1/citizens", json=_registration(next(_registrations)),
                           headers={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert 0 < _retry_after(answers[-1]) <= 3600
    # Behind one configured proxy, the address it forwards is the client's: each has its own quota.
    proxied = create_app(replace(app.extensions["motcua"].settings, proxy_hops=1))
    try:
        client = proxied.test_client()
        answers = [client.post("/api/v1/citizens", json=_registration(next(_registrations)),
                               headers={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(10, 13)]
        assert [a.status_code for a in answers] == [201, 201, 201]
        again = client.post("/api/v1/citizens", json=_registration(next(_registrations)),
                            headers={"X-Forwarded-For": "198.51.100.10"})
        assert again.status_code == 201  # the second of that address
        third = client.post("/api/v1/citizens", json=_registration(next(_registrations)),
                            headers={"X-Forwarded-For": "198.51.100.10"})
        assert third.status_code == 429
    finally:
        proxied.extensions["motcua"].engine.dispose()


# --- no secrets in the logs ---------------------------------------------------------------------

def test_no_password_token_code_or_key_reaches_the_logs(app, caplog):
    """Login, tokens, SMS codes, TOTP enrolment and login, and a signed payment callback, with every
    application logger at DEBUG and SQL statements logged with their parameters' level (INFO, what
    MOTCUA_SQL_ECHO gives): none of the secrets appears in any record."""
    caplog.set_level(logging.DEBUG)
    for name in ("werkzeug", "engine", "backoffice", "connectors", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    secrets_seen: list[str] = [DEMO_PASSWORD, SECRET_KEY, PAYMENT_SECRET]

    # A wrong and a right password on the login page; a bearer token, used.
    page = app.test_client()
    wrong_password = "Wrong@" + secrets.token_hex(6)
    secrets_seen.append(wrong_password)
    page.post("/login", data={"username": "onestop.anhoathinh", "password": wrong_password,
                              "csrf_token": csrf_of(page)})
    page.post("/login", data={"username": "onestop.anhoathinh", "password": DEMO_PASSWORD,
                              "csrf_token": csrf_of(page)})
    api = app.test_client()
    token = api.post("/api/v1/auth/login", json={"username": "onestop.anhoathinh",
                                                 "password": DEMO_PASSWORD}).get_json()["token"]
    secrets_seen.append(token)
    assert api.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # A citizen registers (SMS code), confirms, logs in with a second SMS code.
    registration = {**_registration(next(_registrations)), "password": "Reg@" + secrets.token_hex(6)}
    secrets_seen.append(registration["password"])
    assert api.post("/api/v1/citizens", json=registration).status_code == 201
    code = sms_code(app, registration["phone"])
    secrets_seen.append(code)
    assert api.post("/api/v1/citizens/verify", json={"id_number": registration["id_number"],
                                                     "otp": code}).status_code == 200
    assert api.post("/api/v1/auth/login", json={"username": registration["id_number"],
                                                "password": registration["password"]}).status_code == 200
    login_code = sms_code(app, registration["phone"])
    secrets_seen.append(login_code)
    citizen = api.post("/api/v1/auth/otp", json={"username": registration["id_number"], "otp": login_code})
    assert citizen.status_code == 200
    secrets_seen.append(citizen.get_json()["token"])

    # A leader enrols a second factor on the pages (the secret is stored), then logs in with a code.
    with transaction(_factory(app)) as session:
        session.scalar(select(User).where(User.username == "leader.anhoathinh")).totp_secret = None
    leader = app.test_client()
    leader.post("/login", data={"username": "leader.anhoathinh", "password": DEMO_PASSWORD,
                                "csrf_token": csrf_of(leader)})
    enrol_page = leader.get("/login/totp").get_data(as_text=True)
    totp_secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', enrol_page).group(1)
    totp_code = pyotp.TOTP(totp_secret).at(clock.now())
    secrets_seen += [totp_secret, totp_code]
    enrolled = leader.post("/login/totp", data={"otp": totp_code, "csrf_token": csrf_of(leader, "/login/totp")})
    assert enrolled.status_code == 302
    clock.freeze(clock.now() + timedelta(seconds=60))
    next_code = pyotp.TOTP(totp_secret).at(clock.now())
    secrets_seen.append(next_code)
    leader_api = api.post("/api/v1/auth/login", json={"username": "leader.anhoathinh", "password": DEMO_PASSWORD,
                                                      "otp": next_code})
    assert leader_api.status_code == 200
    secrets_seen.append(leader_api.get_json()["token"])

    # A payment callback signed with the provider's key.
    raw = json.dumps({"event_id": "evt-log", "reference": "no-such-payment", "amount": 1, "currency": "VND",
                      "status": "paid", "transaction": "T-log"}).encode()
    signature = sign(PAYMENT_SECRET, raw)
    secrets_seen.append(signature)
    callback = api.post("/api/v1/connectors/payment/callback", data=raw,
                        headers={"Content-Type": "application/json", "X-Signature": signature})
    assert callback.status_code < 500

    records = caplog.records
    text = "\n".join([caplog.text, *(record.getMessage() for record in records)])
    # The capture works: the statements of the flows above are in it.
    assert any(record.name.startswith("sqlalchemy.engine") for record in records)
    assert "UPDATE user_account" in text
    assert "INSERT INTO" in text
    leaked = [value[:12] + "…" for value in secrets_seen if value in text]
    assert not leaked, f"secrets in the logs: {leaked}"


# --- production refuses default secrets ---------------------------------------------------------

PROD = {
    "MOTCUA_ENV": "production",
    "MOTCUA_SECRET_KEY": "k" * 48,
    "MOTCUA_SANDBOX": "0",
    "MOTCUA_DATABASE_URL": "postgresql+psycopg://motcua:Xq7-long-db-password@db/motcua",
    "MOTCUA_WORKER": "celery",
    "MOTCUA_BROKER_URL": "amqp://motcua:Xq7-long-mq-password@mq:5672/motcua",
}


def _without(key: str) -> dict[str, str]:
    return {k: v for k, v in PROD.items() if k != key}


@pytest.mark.parametrize(("environ", "setting", "value"), [
    (_without("MOTCUA_SECRET_KEY"), "MOTCUA_SECRET_KEY", DEFAULT_SECRET),
    ({**PROD, "MOTCUA_SECRET_KEY": ""}, "MOTCUA_SECRET_KEY", None),
    ({**PROD, "MOTCUA_SECRET_KEY": DEFAULT_SECRET * 2}, "MOTCUA_SECRET_KEY", DEFAULT_SECRET),
    ({**PROD, "MOTCUA_PAYMENT_URL": "https://pay.example/api"}, "MOTCUA_PAYMENT_SECRET", None),
    ({**PROD, "MOTCUA_PAYMENT_URL": "https://pay.example/api", "MOTCUA_PAYMENT_SECRET": "short"},
     "MOTCUA_PAYMENT_SECRET", "short"),
    ({**PROD, "MOTCUA_PAYMENT_SECRET": "sandbox-payment-secret"}, "MOTCUA_PAYMENT_SECRET", "sandbox-payment-secret"),
    ({**PROD, "MOTCUA_POSTAL_URL": "https://post.example", "MOTCUA_POSTAL_SECRET": "sandbox-postal-secret"},
     "MOTCUA_POSTAL_SECRET", "sandbox-postal-secret"),
    ({**PROD, "MOTCUA_SMS_URL": "https://sms.example", "MOTCUA_SMS_SECRET": "sandbox-sms-secret"},
     "MOTCUA_SMS_SECRET", "sandbox-sms-secret"),
    ({**PROD, "MOTCUA_PORTAL_SECRET": "sandbox-portal-secret"}, "MOTCUA_PORTAL_SECRET", "sandbox-portal-secret"),
    ({**PROD, "MOTCUA_DATABASE_URL": "postgresql+psycopg://motcua:PASSWORD@db/motcua"}, "MOTCUA_DATABASE_URL",
     "PASSWORD"),
    ({**PROD, "MOTCUA_DATABASE_URL": "postgresql+psycopg://postgres:postgres@db/motcua"}, "MOTCUA_DATABASE_URL",
     None),
    ({**PROD, "MOTCUA_DATABASE_URL": "postgresql+psycopg://motcua:motcua@db/motcua"}, "MOTCUA_DATABASE_URL", None),
])
def test_production_refuses_default_or_weak_secrets_naming_the_setting(environ, setting, value):
    with pytest.raises(ConfigError, match=setting) as refused:
        Settings.from_env(environ)
    if value:
        assert value not in str(refused.value)  # the message names the setting, never its value


def test_production_accepts_real_secrets():
    settings = Settings.from_env({**PROD, "MOTCUA_PAYMENT_URL": "https://pay.example/api",
                                  "MOTCUA_PAYMENT_SECRET": "p" * 24})
    assert settings.connector_secret("payment") == "p" * 24
    assert Settings.from_env(PROD).connector_secret("payment") is None  # no provider key: callbacks refused
    # Without a password in the URL (peer or certificate authentication) nothing is guessable.
    assert Settings.from_env({**PROD, "MOTCUA_DATABASE_URL": "postgresql+psycopg://motcua@db/motcua"})


@pytest.fixture
def default_secret_environment(monkeypatch) -> dict[str, str | None]:
    """Production with the default secret key, as the only MOTCUA_* variables of the process."""
    environ: dict[str, str | None] = {key: None for key in os.environ if key.startswith("MOTCUA_")}
    environ.update({**PROD, "MOTCUA_SECRET_KEY": DEFAULT_SECRET})
    for key, value in environ.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return environ


def test_the_app_factory_refuses_to_start_with_the_default_secret(default_secret_environment):
    with pytest.raises(ConfigError, match="MOTCUA_SECRET_KEY"):
        create_app()
    with pytest.raises(ConfigError, match="MOTCUA_SECRET_KEY"):
        app_factory()  # gunicorn's entry point


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["beat"], ["db", "upgrade"]])
def test_motcua_commands_refuse_to_start_with_the_default_secret(command, default_secret_environment, monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("started although the configuration was refused")

    monkeypatch.setattr(Flask, "run", never)
    result = CliRunner().invoke(main, command, env=default_secret_environment)
    assert result.exit_code == 1, result.output
    assert "configuration:" in result.output
    assert "MOTCUA_SECRET_KEY" in result.output
