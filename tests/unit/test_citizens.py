"""Citizen accounts and their API: registration checks (nothing stored on bad input), SMS codes
with expiry, attempt, resend and rate limits, login and password reset by code, a citizen's own
dossiers only, supplement answers, signed payment and postal callbacks, assisted submission."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backoffice.app import create_app
from connectors import build_registry
from connectors.http import sign
from engine import catalogue, citizens, clock, jobs, services
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, CallbackReceipt, Dossier, OtpChallenge, Payment, Role, User, UserRole
from engine.security import hash_password
from scripts.seed import CITIZEN, DEMO_PASSWORD, _seed_accounts
from tests.factories import api_token, sms_code

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
GOOD = {"id_number": "042301004321", "full_name": "Trần Thị Bích", "date_of_birth": "2001-03-09",
        "phone": "0912 345 678", "email": "bich.tran@example.vn", "password": "Bich@2026x"}
OTHER_CITIZEN = "079200001234"
BIRTH_FORM = {"child_full_name": "Lê Minh Khôi", "birth_date": "2026-11-02", "gender": "male",
              "birth_place": "Trạm y tế xã An Hòa Thịnh", "mother_full_name": "Trần Thị Bích",
              "requester_relationship": "Mẹ"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("citizens") / "api.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        for code in ("birth_registration", "marital_status_confirmation"):
            catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / code),
                                     actor=services.SYSTEM_ACTOR)
        other = User(username=OTHER_CITIZEN, full_name="Võ Thị Em", password_hash=hash_password(DEMO_PASSWORD),
                     id_number=OTHER_CITIZEN, phone="0900000002")
        other.role_rows = [UserRole(role=Role.CITIZEN.value)]
        session.add(other)
    yield application
    application.extensions["motcua"].engine.dispose()


@pytest.fixture(autouse=True)
def _monday(app):
    clock.freeze(datetime(2026, 11, 16, 9, 0, tzinfo=VN_TZ))


def _factory(app):
    return app.extensions["motcua"].factory


def _count(app, model) -> int:
    with transaction(_factory(app)) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


_tokens: dict[str, str] = {}


def _bearer(app, username: str) -> dict[str, str]:
    """A token per user for the module (each citizen login costs an SMS code of the hourly quota)."""
    if username not in _tokens:
        _tokens[username] = api_token(app.test_client(), username, DEMO_PASSWORD)
    return {"Authorization": f"Bearer {_tokens[username]}"}


# --- field checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("number", "born", "problem"), [
    ("042301004321", date(2001, 3, 9), None),
    ("001099012345", date(1999, 5, 12), None),
    ("04230100432", date(2001, 3, 9), "12 digits"),
    ("04230100432a", date(2001, 3, 9), "12 digits"),
    ("003301004321", date(2001, 3, 9), "province code"),  # 003 is no province
    ("042101004321", date(2001, 3, 9), "date of birth"),  # century digit 1 = born in the 1900s
    ("042302004321", date(2001, 3, 9), "date of birth"),  # year digits 02
    ("042399004321", date(1899, 3, 9), "date of birth"),
    ("042999004321", date(1899, 3, 9), "date of birth"),  # 8 and 9 are the 2300s (Decree 137/2015 art. 7)
])
def test_cccd_number_rules(number, born, problem):
    errors = citizens.id_number_errors(number, born)
    assert (errors == []) if problem is None else (problem in errors[0])


@pytest.mark.parametrize(("password", "missing"), [
    ("Abcdef1!", None), ("abcdef1!", "upper-case"), ("ABCDEF1!", "lower-case"), ("Abcdefg!", "digit"),
    ("Abcdefg1", "special"), ("Ab1!", "8 characters")])
def test_password_policy(password, missing):
    errors = citizens.password_errors(password)
    assert (errors == []) if missing is None else (missing in errors[0])


# --- registration ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("id_number", ""), ("id_number", "12345"), ("id_number", "999301004321"), ("id_number", "042101004321"),
    ("full_name", ""), ("full_name", "Bích"), ("full_name", "Trần Thị B1ch"), ("full_name", "x" * 120),
    ("date_of_birth", ""), ("date_of_birth", "09/03/2001"), ("date_of_birth", "2031-01-01"),
    ("phone", ""), ("phone", "0212345678"), ("phone", "091234567"), ("email", "bich@"),
    ("password", ""), ("password", "password"), ("password", "Sh0rt!"),
])
def test_every_registration_field_is_checked_and_nothing_is_stored(app, field, value):
    before = (_count(app, User), _count(app, OtpChallenge))
    response = app.test_client().post("/api/v1/citizens", json={**GOOD, field: value})
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]
    assert (_count(app, User), _count(app, OtpChallenge)) == before


def test_register_verify_login_with_sms_codes(app):
    client = app.test_client()
    body = {**GOOD, "id_number": "042301007777", "phone": "0987000111"}
    response = client.post("/api/v1/citizens", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["phone"] == "******0111"
    # not active until the phone is proved
    assert client.post("/api/v1/auth/login", json={"username": body["id_number"],
                                                   "password": body["password"]}).status_code == 401
    code = sms_code(app, "0987000111")
    wrong = "000000" if code != "000000" else "111111"
    verify = "/api/v1/citizens/verify"
    assert client.post(verify, json={"id_number": body["id_number"], "otp": wrong}).status_code == 422
    assert client.post(verify, json={"id_number": body["id_number"], "otp": code}).status_code == 200
    # registering the same number again is refused now
    again = client.post("/api/v1/citizens", json=body)
    assert again.status_code == 409
    assert "id_number" in again.get_json()["error"]["fields"]
    # login: password, then the SMS code
    first = client.post("/api/v1/auth/login", json={"username": body["id_number"], "password": body["password"]})
    assert first.get_json() == {"otp_required": True, "method": "sms", "phone": "******0111"}
    token = client.post("/api/v1/auth/otp", json={"username": body["id_number"],
                                                  "otp": sms_code(app, "0987000111")})
    assert token.status_code == 200
    assert token.get_json()["user"]["roles"] == ["citizen"]
    # a code is good once
    replay = client.post("/api/v1/auth/otp", json={"username": body["id_number"], "otp": sms_code(app, "0987000111")})
    assert replay.status_code == 401


def test_code_brute_force_is_stopped(app):
    client = app.test_client()
    body = {**GOOD, "id_number": "042301008888", "phone": "0987000222"}
    assert client.post("/api/v1/citizens", json=body).status_code == 201
    code = sms_code(app, "0987000222")
    wrongs = [f"{n:06d}" for n in range(10) if f"{n:06d}" != code][:citizens.OTP_MAX_ATTEMPTS]
    answers = [client.post("/api/v1/citizens/verify", json={"id_number": body["id_number"], "otp": w})
               for w in wrongs]
    assert [a.status_code for a in answers] == [422] * citizens.OTP_MAX_ATTEMPTS
    assert "too many wrong codes" in answers[-1].get_json()["error"]["fields"]["otp"][0]
    # the right code no longer works: the challenge is dead
    late = client.post("/api/v1/citizens/verify", json={"id_number": body["id_number"], "otp": code})
    assert late.status_code == 422
    with transaction(_factory(app)) as session:
        assert session.scalar(select(User.is_active).where(User.username == body["id_number"])) is False
        failures = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "otp_failed", AuditEvent.actor == body["id_number"]))
    assert failures == citizens.OTP_MAX_ATTEMPTS


def test_resend_waits_a_minute_and_is_limited(app):
    client = app.test_client()
    body = {**GOOD, "id_number": "042301009999", "phone": "0987000333"}
    assert client.post("/api/v1/citizens", json=body).status_code == 201
    resend = {"id_number": body["id_number"], "purpose": "register"}
    assert client.post("/api/v1/citizens/otp/resend", json=resend).status_code == 429  # too soon
    first = sms_code(app, "0987000333")
    clock.freeze(clock.now() + timedelta(seconds=61))
    assert client.post("/api/v1/citizens/otp/resend", json=resend).status_code == 202
    second = sms_code(app, "0987000333")
    if first != second:  # the old code stops working
        assert client.post("/api/v1/citizens/verify", json={"id_number": body["id_number"],
                                                            "otp": first}).status_code == 422
    clock.freeze(clock.now() + timedelta(seconds=61))
    assert client.post("/api/v1/citizens/otp/resend", json=resend).status_code == 202
    clock.freeze(clock.now() + timedelta(seconds=61))
    limited = client.post("/api/v1/citizens/otp/resend", json=resend)
    assert limited.status_code == 429
    assert "too many times" in limited.get_json()["error"]["message"]
    # and an expired code is refused
    clock.freeze(clock.now() + citizens.OTP_TTL + timedelta(seconds=1))
    expired = client.post("/api/v1/citizens/verify", json={"id_number": body["id_number"],
                                                           "otp": sms_code(app, "0987000333")})
    assert "expired" in expired.get_json()["error"]["message"]


def test_one_phone_gets_a_bounded_number_of_codes_per_hour(app):
    client = app.test_client()
    answers = []
    for n in range(citizens.OTP_PHONE_HOURLY + 1):
        answers.append(client.post("/api/v1/citizens", json={**GOOD, "id_number": f"04230101{n:04d}",
                                                              "phone": "0987000444"}).status_code)
    assert answers == [201] * citizens.OTP_PHONE_HOURLY + [429]


def test_password_reset_by_code(app):
    client = app.test_client()
    body = {**GOOD, "id_number": "042301005555", "phone": "0987000555"}
    client.post("/api/v1/citizens", json=body)
    client.post("/api/v1/citizens/verify", json={"id_number": body["id_number"], "otp": sms_code(app, "0987000555")})
    unknown = client.post("/api/v1/citizens/password-reset", json={"id_number": "042301000000"})
    known = client.post("/api/v1/citizens/password-reset", json={"id_number": body["id_number"]})
    assert (unknown.status_code, unknown.get_json()) == (known.status_code, known.get_json())  # no probing
    weak = client.post("/api/v1/citizens/password-reset/confirm", json={
        "id_number": body["id_number"], "otp": sms_code(app, "0987000555"), "password": "weak"})
    assert weak.status_code == 422
    assert "password" in weak.get_json()["error"]["fields"]
    done = client.post("/api/v1/citizens/password-reset/confirm", json={
        "id_number": body["id_number"], "otp": sms_code(app, "0987000555"), "password": "New#Pass2026"})
    assert done.status_code == 200
    assert client.post("/api/v1/auth/login", json={"username": body["id_number"],
                                                   "password": "New#Pass2026"}).get_json()["otp_required"]
    assert client.post("/api/v1/auth/login", json={"username": body["id_number"],
                                                   "password": body["password"]}).status_code == 401


# --- dossiers -------------------------------------------------------------------------------------

def _submit(app, headers, **changes):
    body = {"procedure": "birth_registration", "unit": "anhoathinh", "applicant": {"type": "individual"},
            "form": BIRTH_FORM, "delivery": {"method": "post", "address": "Thôn Đông, xã An Hòa Thịnh"},
            "attachments": [{"name": "giay-chung-sinh.png", "mime": "image/png",
                             "content_base64": base64.b64encode(PNG).decode()}], **changes}
    response = app.test_client().post("/api/v1/dossiers", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["code"]


def _complete(app, code: str, step: str, data: dict) -> None:
    from engine.models import Task

    with transaction(_factory(app)) as session:
        task = session.scalar(select(Task).join(Dossier).where(Dossier.code == code, Task.spec_name == step,
                                                               Task.state == "ready"))
        assert task is not None, f"{code} has no open {step}"
        user = session.scalar(select(User).where(User.unit_id == task.unit_id, User.role_rows.any(role=task.role)))
        services.complete_task(session, task.id, actor=services.Actor.of(user), data=data)
    _drain(app)


def _drain(app) -> None:
    """Run the service calls the step started (notices, signing, post), as the worker does."""
    jobs.drain(_factory(app), build_registry(Settings(env="test"), _factory(app)), lease=timedelta(seconds=30))


def _confirm_draft(app, code: str, headers: dict[str, str]) -> None:
    answer = app.test_client().post(f"/api/v1/dossiers/{code}/draft", headers=headers, json={"confirm": True})
    assert answer.status_code == 200, answer.get_json()


def test_the_applicant_checks_the_draft_result_before_signing(app):
    mine, theirs = _bearer(app, CITIZEN["username"]), _bearer(app, OTHER_CITIZEN)
    code = _submit(app, mine)
    client = app.test_client()
    draft = f"/api/v1/dossiers/{code}/draft"
    assert client.post(draft, headers=mine, json={"confirm": True}).status_code == 409  # nothing to check yet
    _complete(app, code, "receive", {"decision": "accept"})
    _complete(app, code, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    texts = [m["text"] for m in client.get("/sandbox/sms/messages?to=" + CITIZEN["phone"]).get_json()]
    assert any(code in t and "dự thảo" in t for t in texts)
    assert client.post(draft, headers=theirs, json={"confirm": True}).status_code == 403
    assert client.post(draft, headers=mine, json={"confirm": "yes"}).status_code == 422
    vague = client.post(draft, headers=mine, json={"confirm": False, "note": ""})
    assert "note" in vague.get_json()["error"]["fields"]
    assert client.post(draft, headers=mine, json={"confirm": False,
                                                  "note": "Tên con là Khôi, không phải Khoi"}).status_code == 200
    _complete(app, code, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    _confirm_draft(app, code, mine)
    _complete(app, code, "approve", {"decision": "approve"})
    history = client.get(f"/api/v1/dossiers/{code}", headers=mine).get_json()
    assert history["status"] in ("processed", "returned")


def test_a_citizen_sees_only_their_own_dossiers(app):
    mine, theirs = _bearer(app, CITIZEN["username"]), _bearer(app, OTHER_CITIZEN)
    code = _submit(app, mine)
    client = app.test_client()
    assert code in [d["code"] for d in client.get("/api/v1/me/dossiers", headers=mine).get_json()]
    assert code not in [d["code"] for d in client.get("/api/v1/me/dossiers", headers=theirs).get_json()]
    for path in (f"/api/v1/dossiers/{code}", f"/api/v1/dossiers/{code}/deadline",
                 f"/api/v1/dossiers/{code}/documents"):
        assert client.get(path, headers=theirs).status_code == 403, path
        assert client.get(path, headers=mine).status_code == 200, path
    for path, payload in ((f"/api/v1/dossiers/{code}/withdraw", {"reason": "Không cần nữa"}),
                          (f"/api/v1/dossiers/{code}/supplements", {"note": "Bổ sung giấy tờ"}),
                          (f"/api/v1/dossiers/{code}/payments", {}),
                          (f"/api/v1/dossiers/{code}/draft", {"confirm": True})):
        assert client.post(path, json=payload, headers=theirs).status_code == 403, path
    # public tracking needs the last four digits of the applicant's phone
    assert client.get(f"/api/v1/track/{code}?phone_last4=0001").status_code == 200
    assert client.get(f"/api/v1/track/{code}?phone_last4=0002").status_code == 404


def test_supplement_answer_restarts_the_clock_and_the_deadline_is_explained(app):
    mine = _bearer(app, CITIZEN["username"])
    clock.freeze(datetime(2026, 11, 20, 16, 0, tzinfo=VN_TZ))  # Friday after 15:00: due Monday
    code = _submit(app, mine)
    client = app.test_client()
    explained = client.get(f"/api/v1/dossiers/{code}/deadline", headers=mine).get_json()
    assert explained["rule"] == "same_day"
    assert explained["after_cutoff"] is True
    assert [(d["date"], d["counted"], d["reason"]) for d in explained["days"]] == [
        ("2026-11-20", True, "working_day"), ("2026-11-21", False, "weekend"), ("2026-11-22", False, "weekend"),
        ("2026-11-23", True, "working_day")]
    assert explained["due_at"] == "2026-11-23T17:00:00+07:00"
    assert explained["matches"]
    clock.freeze(datetime(2026, 11, 23, 8, 0, tzinfo=VN_TZ))
    _complete(app, code, "receive", {"decision": "supplement", "note": "Thiếu giấy chứng sinh bản rõ nét"})
    assert client.get(f"/api/v1/dossiers/{code}", headers=mine).get_json()["status"] == "supplement_requested"
    empty = client.post(f"/api/v1/dossiers/{code}/supplements", json={}, headers=mine)
    assert empty.status_code == 422
    clock.freeze(datetime(2026, 11, 24, 10, 0, tzinfo=VN_TZ))
    answered = client.post(f"/api/v1/dossiers/{code}/supplements", headers=mine, json={
        "note": "Gửi bản chụp rõ nét", "attachments": [{"name": "giay-chung-sinh-ro.png", "mime": "image/png",
                                                         "content_base64": base64.b64encode(PNG).decode()}]})
    assert answered.status_code == 200, answered.get_json()
    # the full legal time counts again from the answer; 24/11 is the Vietnamese Culture Day holiday
    assert answered.get_json()["due_at"] == "2026-11-25T17:00:00+07:00"
    explained = client.get(f"/api/v1/dossiers/{code}/deadline", headers=mine).get_json()
    assert explained["start_reason"] == "supplement_received"
    assert [(d["date"], d["reason"], d["name"]) for d in explained["days"]] == [
        ("2026-11-24", "holiday", "Ngày Văn hóa Việt Nam"), ("2026-11-25", "working_day", None)]
    assert [(p["started_at"], p["ended_at"]) for p in explained["pauses"]] == [
        ("2026-11-23T08:00:00+07:00", "2026-11-24T10:00:00+07:00")]
    kinds = [d["kind"] for d in client.get(f"/api/v1/dossiers/{code}/documents", headers=mine).get_json()]
    assert [k for k in kinds if ":" not in k] == ["submission", "supplement"]  # the applicant's files …
    assert "form:supplement" in kinds  # … and the generated supplement request (Mẫu 02) as PDF
    # every status change reached the applicant by SMS and e-mail
    messages = client.get("/sandbox/mail/messages?to=" + CITIZEN["email"]).get_json()
    assert any(code in m["subject"] and "cần bổ sung" in m["text"] for m in messages)
    assert any(code in m["text"] and "đã nộp" in m["text"] for m in messages)


def _signed(app, path: str, payload: dict, secret: str | None = None):
    raw = json.dumps(payload).encode()
    secret = secret or app.extensions["motcua"].settings.connector_secret(path.split("/")[4])
    return app.test_client().post(path, data=raw, headers={"Content-Type": "application/json",
                                                           "X-Signature": sign(secret, raw)})


def test_late_birth_registration_is_paid_online_once_and_delivered_by_post(app):
    mine = _bearer(app, CITIZEN["username"])
    code = _submit(app, mine, form={**BIRTH_FORM, "birth_date": "2026-06-01", "late_registration": True})
    client = app.test_client()
    assert client.post(f"/api/v1/dossiers/{code}/payments", headers=mine).status_code == 409  # nothing due yet
    _complete(app, code, "receive", {"decision": "accept"})
    _complete(app, code, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    _confirm_draft(app, code, mine)
    _complete(app, code, "approve", {"decision": "approve"})
    assert client.get(f"/api/v1/dossiers/{code}", headers=mine).get_json()["status"] == "payment_requested"
    created = client.post(f"/api/v1/dossiers/{code}/payments", headers=mine)
    assert created.status_code == 201
    payment = created.get_json()
    assert (payment["amount"], payment["currency"]) == (10000, "VND")
    assert "/sandbox/payment/" in payment["payment_url"]
    # a second click reuses the pending payment
    assert client.post(f"/api/v1/dossiers/{code}/payments", headers=mine).get_json()["reference"] == \
        payment["reference"]
    callback = {"event_id": "evt-1", "reference": payment["reference"], "amount": 10000, "currency": "VND",
                "status": "paid", "transaction": "T1"}
    path = "/api/v1/connectors/payment/callback"
    before = _count(app, AuditEvent)
    assert _signed(app, path, callback, secret="forged-secret").status_code == 401
    unsigned = client.post(path, json=callback)
    assert unsigned.status_code == 401
    assert _count(app, AuditEvent) == before
    assert _signed(app, path, {**callback, "amount": 1000}).status_code == 422  # wrong amount
    assert _signed(app, path, callback).get_json()["duplicate"] is False
    assert _signed(app, path, callback).get_json()["duplicate"] is True
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        paid = session.scalars(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                        AuditEvent.action == "message_received")).all()
        assert [e.data["message"] for e in paid] == ["draft_confirmed", "payment_received"]
        assert session.scalar(select(Payment.status).where(Payment.reference == payment["reference"])) == "paid"
        assert session.scalar(select(func.count()).select_from(CallbackReceipt)) >= 1
    # the result goes by post; the post's signed callbacks move the case once
    _drain(app)
    postal = "/api/v1/connectors/postal/callback"
    event = {"event_id": "BCCI1-delivered", "dossier_code": code, "event": "delivered", "tracking": "BCCI1"}
    assert _signed(app, postal, event, secret="forged").status_code == 401
    assert _signed(app, postal, {**event, "event_id": "BCCI1-picked", "event": "picked_up"}).status_code == 200
    assert _signed(app, postal, event).get_json()["duplicate"] is False
    assert _signed(app, postal, event).get_json()["duplicate"] is True
    assert client.get(f"/api/v1/dossiers/{code}", headers=mine).get_json()["status"] == "returned"


def test_assisted_submission_needs_the_citizens_code(app):
    volunteer = _bearer(app, "volunteer.anhoathinh")
    client = app.test_client()
    body = {"citizen_id_number": CITIZEN["username"], "procedure": "birth_registration", "unit": "anhoathinh",
            "applicant": {"type": "individual"}, "form": BIRTH_FORM, "delivery": {"method": "counter"}}
    assert client.post("/api/v1/assisted/dossiers", headers=_bearer(app, "justice.anhoathinh"),
                       json=body).status_code == 403
    bad = client.post("/api/v1/assisted/dossiers", headers=volunteer, json={**body, "form": {}})
    assert bad.status_code == 422
    unknown = client.post("/api/v1/assisted/dossiers", headers=volunteer,
                          json={**body, "citizen_id_number": "042301000001"})
    assert unknown.status_code == 422
    assert "citizen_id_number" in unknown.get_json()["error"]["fields"]
    started = client.post("/api/v1/assisted/dossiers", headers=volunteer, json=body)
    assert started.status_code == 202, started.get_json()
    consent = started.get_json()["consent_id"]
    code = sms_code(app, CITIZEN["phone"])
    before = _count(app, Dossier)
    wrong = "000000" if code != "000000" else "111111"
    assert client.post(f"/api/v1/assisted/dossiers/{consent}/confirm", headers=volunteer,
                       json={"otp": wrong}).status_code == 422
    assert _count(app, Dossier) == before
    other_officer = _bearer(app, "onestop.anhoathinh")
    assert client.post(f"/api/v1/assisted/dossiers/{consent}/confirm", headers=other_officer,
                       json={"otp": code}).status_code == 404  # only the one who typed it
    done = client.post(f"/api/v1/assisted/dossiers/{consent}/confirm", headers=volunteer, json={"otp": code})
    assert done.status_code == 201, done.get_json()
    dossier_code = done.get_json()["code"]
    mine = client.get("/api/v1/me/dossiers", headers=_bearer(app, CITIZEN["username"])).get_json()
    assert dossier_code in [d["code"] for d in mine]
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == dossier_code))
        citizen = session.scalar(select(User).where(User.username == CITIZEN["username"]))
        volunteer_user = session.scalar(select(User).where(User.username == "volunteer.anhoathinh"))
        assert (dossier.citizen_id, dossier.submitted_by_id, dossier.channel) == (
            citizen.id, volunteer_user.id, "online")
        confirmed = session.scalar(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                            AuditEvent.action == "assisted_submission_confirmed"))
        assert confirmed.actor == "volunteer.anhoathinh"
        assert confirmed.data["citizen"] == CITIZEN["username"]


def test_wrong_codes_lock_the_account_even_across_new_codes(app):
    client = app.test_client()
    body = {**GOOD, "id_number": "042301003333", "phone": "0987000666"}
    client.post("/api/v1/citizens", json=body)
    client.post("/api/v1/citizens/verify", json={"id_number": body["id_number"], "otp": sms_code(app, "0987000666")})
    login = {"username": body["id_number"], "password": body["password"]}
    assert client.post("/api/v1/auth/login", json=login).get_json()["otp_required"]
    code = sms_code(app, "0987000666")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        assert client.post("/api/v1/auth/otp", json={"username": body["id_number"], "otp": wrong}).status_code == 401
    clock.freeze(clock.now() + timedelta(seconds=61))
    assert client.post("/api/v1/citizens/otp/resend", json={"id_number": body["id_number"],
                                                            "purpose": "login"}).status_code == 202
    fresh = sms_code(app, "0987000666")
    wrong = "000000" if fresh != "000000" else "111111"
    for _ in range(2):  # the new code gives no new guesses: 5 wrong codes lock the account
        client.post("/api/v1/auth/otp", json={"username": body["id_number"], "otp": wrong})
    locked = client.post("/api/v1/auth/otp", json={"username": body["id_number"], "otp": fresh})
    assert locked.status_code == 401
    assert client.post("/api/v1/auth/login", json=login).status_code == 423


def test_payment_callbacks_accept_only_final_statuses_and_a_retry_after_failure(app):
    mine = _bearer(app, CITIZEN["username"])
    code = _submit(app, mine, form={**BIRTH_FORM, "birth_date": "2026-06-01", "late_registration": True})
    _complete(app, code, "receive", {"decision": "accept"})
    _complete(app, code, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    _confirm_draft(app, code, mine)
    _complete(app, code, "approve", {"decision": "approve"})
    client = app.test_client()
    created = client.post(f"/api/v1/dossiers/{code}/payments", headers=mine,
                          json={"return_url": "//evil.example/steal"}).get_json()
    with transaction(_factory(app)) as session:
        from connectors import sandbox

        order = sandbox.records(session, provider="payment", key=created["reference"])[0].payload
    assert order["return_url"] == ""  # only same-site paths are kept
    path = "/api/v1/connectors/payment/callback"
    base = {"reference": created["reference"], "amount": 10000, "currency": "VND", "transaction": "T"}
    assert _signed(app, path, {**base, "event_id": "e1", "status": "processing"}).status_code == 422
    assert _signed(app, path, {**base, "event_id": "", "status": "paid"}).status_code == 422
    assert _signed(app, path, {**base, "event_id": "e2", "status": "failed"}).get_json()["status"] == "failed"
    assert client.get(f"/api/v1/dossiers/{code}", headers=mine).get_json()["status"] == "payment_requested"
    paid = _signed(app, path, {**base, "event_id": "e3", "status": "paid"}).get_json()
    assert (paid["status"], paid["duplicate"]) == ("paid", False)
    assert client.get(f"/api/v1/dossiers/{code}", headers=mine).get_json()["status"] != "payment_requested"


def test_money_for_a_withdrawn_dossier_is_kept_and_flagged_for_refund(app):
    mine = _bearer(app, CITIZEN["username"])
    code = _submit(app, mine, form={**BIRTH_FORM, "birth_date": "2026-06-01", "late_registration": True})
    _complete(app, code, "receive", {"decision": "accept"})
    _complete(app, code, "appraise", {"decision": "propose_approve", "birth_proof": "birth_certificate"})
    _confirm_draft(app, code, mine)
    _complete(app, code, "approve", {"decision": "approve"})
    client = app.test_client()
    reference = client.post(f"/api/v1/dossiers/{code}/payments", headers=mine).get_json()["reference"]
    assert client.post(f"/api/v1/dossiers/{code}/withdraw", headers=mine,
                       json={"reason": "Gia đình chuyển nơi cư trú"}).status_code == 200
    paid = _signed(app, "/api/v1/connectors/payment/callback", {
        "event_id": "late-1", "reference": reference, "amount": 10000, "currency": "VND", "status": "paid"})
    assert paid.status_code == 200
    with transaction(_factory(app)) as session:
        assert session.scalar(select(Payment.status).where(Payment.reference == reference)) == "paid"
        flagged = session.scalar(select(AuditEvent).where(AuditEvent.action == "payment_refund_due",
                                                          AuditEvent.dossier_code == code))
        assert flagged is not None
        assert flagged.data["amount"] == 10000


def test_assisted_submission_is_checked_before_the_citizen_is_asked(app):
    volunteer = _bearer(app, "volunteer.anhoathinh")
    client = app.test_client()
    with transaction(_factory(app)) as session:
        challenges = session.scalar(select(func.count()).select_from(OtpChallenge))
    base = {"citizen_id_number": CITIZEN["username"], "procedure": "birth_registration",
            "applicant": {"type": "individual", "email": "volunteer@example.vn"}, "form": BIRTH_FORM}
    bad = [({**base, "unit": "nowhere"}, "unit"),
           ({**base, "unit": "anhoathinh", "delivery": {"method": "post"}}, "delivery.address")]
    for body, field in bad:
        answer = client.post("/api/v1/assisted/dossiers", headers=volunteer, json=body)
        assert answer.status_code == 422, answer.get_json()
        assert field in answer.get_json()["error"]["fields"]
    with transaction(_factory(app)) as session:
        assert session.scalar(select(func.count()).select_from(OtpChallenge)) == challenges  # nobody was asked
    started = client.post("/api/v1/assisted/dossiers", headers=volunteer, json={**base, "unit": "anhoathinh"})
    consent = started.get_json()["consent_id"]
    text = client.get("/sandbox/sms/messages?to=" + CITIZEN["phone"]).get_json()[-1]["text"]
    assert "Dang ky khai sinh" in text
    assert "volunteer.anhoathinh" in text
    assert "Bo phan Mot cua" in text
    done = client.post(f"/api/v1/assisted/dossiers/{consent}/confirm", headers=volunteer,
                       json={"otp": sms_code(app, CITIZEN["phone"])})
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == done.get_json()["code"]))
        assert dossier.applicant["email"] == CITIZEN["email"]  # the citizen's, never the assistant's


def test_a_configured_provider_needs_its_own_key():
    assert Settings(env="test").connector_secret("payment") == "sandbox-payment-secret"
    assert Settings(env="test", payment_url="https://pay.example/api").connector_secret("payment") is None
    assert Settings(env="test", payment_url="https://pay.example/api",
                    payment_secret="k" * 20).connector_secret("payment") == "k" * 20


def test_one_address_starts_a_bounded_number_of_registrations(app, monkeypatch):
    monkeypatch.setattr(citizens, "OTP_IP_HOURLY", 3)
    client = app.test_client()

    def register(n: int, address: str) -> int:
        body = {**GOOD, "id_number": f"04230102{n:04d}", "phone": f"09870020{n:02d}"}
        return client.post("/api/v1/citizens", json=body, environ_base={"REMOTE_ADDR": address}).status_code

    assert [register(n, "203.0.113.7") for n in range(4)] == [201, 201, 201, 429]
    assert register(5, "198.51.100.9") == 201  # another address is not held back
