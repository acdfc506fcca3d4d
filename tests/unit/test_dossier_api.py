"""POST /api/v1/dossiers with attachments, the documents list and inline downloads: who may submit,
what is refused (422 with the field, nothing stored), who may read the files."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from backoffice.app import create_app
from engine import catalogue, clock, services
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import Attachment, AuditEvent, Dossier, DossierCodeCounter, Role, User, UserRole
from engine.security import hash_password
from scripts.seed import CITIZEN, DEMO_PASSWORD, _seed_accounts
from tests.factories import api_token

PROCEDURE = "marital_status_confirmation"
FORM = {"purpose": "Kết hôn", "residence": "Thôn Đông, xã An Hòa Thịnh"}
APPLICANT = {"type": "individual", "full_name": "Phạm Thị Dung", "id_number": "001199000111", "phone": "0903334444"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20) + b"\xff\xd9"
OTHER_CITIZEN = "079200001234"


def upload(name: str, content: bytes, mime: str) -> dict[str, str]:
    return {"name": name, "content_base64": base64.b64encode(content).decode(), "mime": mime}


def body(**changes: object) -> dict[str, object]:
    result: dict[str, object] = {
        "procedure": PROCEDURE, "unit": "anhoathinh", "applicant": dict(APPLICANT), "form": dict(FORM),
        "delivery": {"method": "counter"},
        "attachments": [upload("Tờ khai.pdf", PDF, "application/pdf"), upload("cccd.png", PNG, "image/png")],
    }
    result.update(changes)
    return result


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("dossier_api") / "api.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / PROCEDURE),
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


_tokens: dict[str, str] = {}


def auth(client, username: str) -> dict[str, str]:
    if username not in _tokens:
        _tokens[username] = api_token(client, username, DEMO_PASSWORD)
    return {"Authorization": f"Bearer {_tokens[username]}"}


def stored(app) -> tuple[int, int, int, int]:
    """Rows a submission writes: dossiers, attachments, audit events, dossier code numbers."""
    with transaction(app.extensions["motcua"].factory) as session:
        return (
            session.scalar(select(func.count()).select_from(Dossier)) or 0,
            session.scalar(select(func.count()).select_from(Attachment)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            session.scalar(select(func.coalesce(func.sum(DossierCodeCounter.last), 0))) or 0,
        )


def test_officer_submits_at_the_counter_with_attachments(app):
    client = app.test_client()
    officer = auth(client, "onestop.anhoathinh")
    response = client.post("/api/v1/dossiers", json=body(), headers=officer)
    assert response.status_code == 201, response.get_json()
    result = response.get_json()
    assert set(result) == {"code", "status", "status_code", "due_at"}
    assert result["code"].startswith("000.20.42.H42-261116-")
    assert (result["status"], result["status_code"]) == ("submitted", 1)
    assert result["due_at"] == "2026-11-19T17:00:00+07:00"  # 3 working days, day of receipt not counted
    assert response.headers["Location"] == f"/api/v1/dossiers/{result['code']}"

    with transaction(app.extensions["motcua"].factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == result["code"]))
        assert (dossier.channel, dossier.citizen_id, dossier.applicant_name) == ("counter", None, "Phạm Thị Dung")
        files = session.scalars(select(Attachment).where(Attachment.dossier_id == dossier.id)
                                .order_by(Attachment.id)).all()
        assert [(f.name, f.mime, f.size, f.kind, f.content) for f in files] == [
            ("Tờ khai.pdf", "application/pdf", len(PDF), "submission", PDF),
            ("cccd.png", "image/png", len(PNG), "submission", PNG),
        ]
        assert files[0].sha256 == hashlib.sha256(PDF).hexdigest()
        event = session.scalar(select(AuditEvent).where(AuditEvent.dossier_id == dossier.id,
                                                        AuditEvent.action == "dossier_submitted"))
        assert event.data["attachments"] == [
            {"name": "Tờ khai.pdf", "mime": "application/pdf", "size": len(PDF),
             "sha256": hashlib.sha256(PDF).hexdigest()},
            {"name": "cccd.png", "mime": "image/png", "size": len(PNG), "sha256": hashlib.sha256(PNG).hexdigest()},
        ]  # never the content

    documents = client.get(f"/api/v1/dossiers/{result['code']}/documents", headers=officer)
    assert documents.status_code == 200
    rows = documents.get_json()
    assert [(r["name"], r["mime"], r["size"], r["kind"]) for r in rows] == [
        ("Tờ khai.pdf", "application/pdf", len(PDF), "submission"), ("cccd.png", "image/png", len(PNG), "submission")]
    assert rows[0]["url"] == f"/api/v1/dossiers/{result['code']}/attachments/{rows[0]['id']}"
    assert rows[0]["uploaded_at"] == "2026-11-16T09:00:00+07:00"

    pdf = client.get(rows[0]["url"], headers=officer)
    assert pdf.status_code == 200
    assert pdf.data == PDF
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    disposition = pdf.headers["Content-Disposition"]
    assert disposition.startswith("inline")
    assert f"filename*=UTF-8''{quote('Tờ khai.pdf')}" in disposition
    assert "no-store" in pdf.headers["Cache-Control"]
    png = client.get(rows[1]["url"], headers=officer)
    assert (png.data, png.mimetype) == (PNG, "image/png")

    history = client.get(f"/api/v1/cases/{result['code']}/history", headers=auth(client, "auditor")).get_json()
    reads = [e["data"]["purpose"] for e in history if e["action"] == "dossier_viewed"]
    assert "documents" in reads
    assert f"attachment {rows[0]['id']}" in reads  # the officer's download of the scan is on record


def test_officer_may_receive_by_post_but_not_claim_online(app):
    client = app.test_client()
    officer = auth(client, "onestop.anhoathinh")
    posted = client.post("/api/v1/dossiers", json=body(channel="post", attachments=[]), headers=officer)
    assert posted.status_code == 201, posted.get_json()
    before = stored(app)
    online = client.post("/api/v1/dossiers", json=body(channel="online"), headers=officer)
    assert online.status_code == 422
    assert online.get_json()["error"]["fields"] == {"channel": ["counter or post"]}
    assert stored(app) == before


def test_citizen_submits_online_for_themselves_and_reads_the_files(app):
    client = app.test_client()
    citizen = auth(client, CITIZEN["username"])
    scan = upload("giay-xac-nhan.jpg", JPEG, "image/jpeg")
    response = client.post("/api/v1/dossiers", headers=citizen, json=body(
        unit="luongphong", applicant={"type": "individual"}, attachments=[scan],
        delivery={"method": "post", "address": "Số 1 đường Lê Lợi, xã Lương Phong"}))
    assert response.status_code == 201, response.get_json()
    code = response.get_json()["code"]
    assert code.startswith("000.23.15.H06-")  # the unit chosen in the body

    with transaction(app.extensions["motcua"].factory) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        user = session.scalar(select(User).where(User.username == CITIZEN["username"]))
        assert (dossier.channel, dossier.citizen_id, dossier.submitted_by_id) == ("online", user.id, user.id)
        assert dossier.applicant_name == CITIZEN["full_name"]  # the account's identity
        assert dossier.applicant_id_number == CITIZEN["username"]
        assert dossier.applicant_phone == CITIZEN["phone"]

    own = client.get(f"/api/v1/dossiers/{code}", headers=citizen)
    assert own.status_code == 200
    rows = client.get(f"/api/v1/dossiers/{code}/documents", headers=citizen).get_json()
    assert [r["name"] for r in rows] == ["giay-xac-nhan.jpg"]
    download = client.get(rows[0]["url"], headers=citizen)
    assert (download.status_code, download.data, download.mimetype) == (200, JPEG, "image/jpeg")

    stranger = auth(client, OTHER_CITIZEN)
    assert client.get(f"/api/v1/dossiers/{code}", headers=stranger).status_code == 403
    assert client.get(f"/api/v1/dossiers/{code}/documents", headers=stranger).status_code == 403
    denied = client.get(rows[0]["url"], headers=stranger)
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "forbidden"
    assert JPEG not in denied.data
    other_unit = auth(client, "onestop.anhoathinh")  # the dossier went to Lương Phong
    assert client.get(rows[0]["url"], headers=other_unit).status_code == 403
    assert client.get(rows[0]["url"], headers=auth(client, "onestop.luongphong")).status_code == 200
    assert client.get(rows[0]["url"], headers=auth(client, "auditor")).status_code == 200


def test_citizen_cannot_submit_for_another_person(app):
    client = app.test_client()
    citizen = auth(client, CITIZEN["username"])
    before = stored(app)
    response = client.post("/api/v1/dossiers", headers=citizen, json=body())
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"applicant.id_number": ["must be your own ID number"]}
    counter = client.post("/api/v1/dossiers", headers=citizen,
                          json=body(applicant={"type": "individual"}, channel="counter"))
    assert counter.status_code == 422
    assert counter.get_json()["error"]["fields"] == {"channel": ["online"]}
    assert stored(app) == before


def test_an_attachment_is_reached_only_through_its_own_dossier(app):
    client = app.test_client()
    officer = auth(client, "onestop.anhoathinh")
    first = client.post("/api/v1/dossiers", json=body(), headers=officer).get_json()["code"]
    second = client.post("/api/v1/dossiers", json=body(attachments=[]), headers=officer).get_json()["code"]
    row = client.get(f"/api/v1/dossiers/{first}/documents", headers=officer).get_json()[0]
    assert client.get(f"/api/v1/dossiers/{second}/documents", headers=officer).get_json() == []
    wrong = client.get(f"/api/v1/dossiers/{second}/attachments/{row['id']}", headers=officer)
    assert wrong.status_code == 404
    assert wrong.get_json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/dossiers/{first}/attachments/999999", headers=officer).status_code == 404
    assert client.get("/api/v1/dossiers/NO-SUCH/documents", headers=officer).status_code == 404
    assert client.get(f"/api/v1/dossiers/{first}/attachments/{row['id']}").status_code == 401


@pytest.mark.parametrize(("username", "unit"), [
    ("onestop.luongphong", "anhoathinh"),  # a one-stop officer of another unit
    ("justice.anhoathinh", "anhoathinh"), ("leader.anhoathinh", "anhoathinh"),
    ("auditor", "anhoathinh"), ("designer", "anhoathinh"), ("admin", "anhoathinh"),
])
def test_only_citizens_and_the_units_one_stop_officers_submit(app, username, unit):
    client = app.test_client()
    headers = auth(client, username)  # logging in is audited: before counting
    before = stored(app)
    response = client.post("/api/v1/dossiers", json=body(unit=unit), headers=headers)
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"]["code"] == "forbidden"
    assert stored(app) == before


def test_submission_needs_a_login(app):
    response = app.test_client().post("/api/v1/dossiers", json=body())
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def _attachment(**changes: object) -> dict[str, object]:
    return {**upload("scan.pdf", PDF, "application/pdf"), **changes}


INVALID: list[tuple[str, dict[str, object], str]] = [
    ("bad base64", body(attachments=[_attachment(content_base64="not*base64!")]), "attachments[0].content_base64"),
    ("empty content", body(attachments=[_attachment(content_base64="")]), "attachments[0].content_base64"),
    ("mime not allowed", body(attachments=[_attachment(mime="text/html")]), "attachments[0].mime"),
    ("mime missing", body(attachments=[{"name": "a.pdf", "content_base64": "JVBERi0="}]), "attachments[0].mime"),
    ("png sent as pdf", body(attachments=[upload("a.pdf", PNG, "application/pdf")]),
     "attachments[0].content_base64"),
    ("html sent as png", body(attachments=[upload("a.png", b"<script>alert(1)</script>", "image/png")]),
     "attachments[0].content_base64"),
    ("second file bad", body(attachments=[_attachment(), upload("b.jpg", PDF, "image/jpeg")]),
     "attachments[1].content_base64"),
    ("name missing", body(attachments=[_attachment(name="")]), "attachments[0].name"),
    ("name with folder", body(attachments=[_attachment(name="../../etc/passwd.pdf")]), "attachments[0].name"),
    ("name with backslash", body(attachments=[_attachment(name="C:\\scan.pdf")]), "attachments[0].name"),
    ("name too long", body(attachments=[_attachment(name="a" * 197 + ".pdf")]), "attachments[0].name"),
    ("name with control character", body(attachments=[_attachment(name="a\nb.pdf")]), "attachments[0].name"),
    ("attachment not an object", body(attachments=["scan.pdf"]), "attachments[0]"),
    ("attachments not a list", body(attachments={"name": "a.pdf"}), "attachments"),
    ("too many files", body(attachments=[_attachment()] * 21), "attachments"),
    ("procedure missing", {k: v for k, v in body().items() if k != "procedure"}, "procedure"),
    ("procedure unknown", body(procedure="no_such_procedure"), "procedure"),
    ("unit missing", {k: v for k, v in body().items() if k != "unit"}, "unit"),
    ("unit unknown", body(unit="atlantis"), "unit"),
    ("applicant missing", {k: v for k, v in body().items() if k != "applicant"}, "applicant"),
    ("applicant not an object", body(applicant="Phạm Thị Dung"), "applicant"),
    ("applicant name missing", body(applicant={"type": "individual", "phone": "0903334444"}),
     "applicant.full_name"),
    ("form field missing", body(form={"purpose": "Kết hôn"}), "form.residence"),
    ("form field unknown", body(form={**FORM, "salary": 1}), "form"),
    ("form field too long", body(form={**FORM, "purpose": "x" * 301}), "form.purpose"),
    ("form not an object", body(form=["Kết hôn"]), "form"),
    ("postal address missing", body(delivery={"method": "post"}), "delivery.address"),
    ("delivery unknown", body(delivery={"method": "drone"}), "delivery.method"),
]


@pytest.mark.parametrize(("request_body", "field"), [(b, f) for _, b, f in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_submissions_are_refused_with_the_field_and_nothing_is_stored(app, request_body, field):
    client = app.test_client()
    headers = auth(client, "onestop.anhoathinh")
    before = stored(app)
    response = client.post("/api/v1/dossiers", json=request_body, headers=headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_data"
    assert any(key == field or key.startswith(field + ".") for key in error["fields"]), error
    assert stored(app) == before


def test_every_attachment_problem_is_reported_at_once(app):
    client = app.test_client()
    response = client.post("/api/v1/dossiers", headers=auth(client, "onestop.anhoathinh"), json=body(attachments=[
        _attachment(name="a/b.pdf"), _attachment(mime="image/gif"), _attachment(content_base64="%%%")]))
    assert set(response.get_json()["error"]["fields"]) == {
        "attachments[0].name", "attachments[1].mime", "attachments[2].content_base64"}


def test_files_over_the_size_limits_are_refused(app, monkeypatch):
    client = app.test_client()
    officer = auth(client, "onestop.anhoathinh")
    monkeypatch.setattr(services, "MAX_ATTACHMENT_BYTES", len(PDF) - 1)
    before = stored(app)
    too_big = client.post("/api/v1/dossiers", json=body(attachments=[_attachment()]), headers=officer)
    assert too_big.status_code == 422
    assert too_big.get_json()["error"]["fields"] == {"attachments[0].content_base64": [f"at most {len(PDF) - 1} bytes"]}
    monkeypatch.setattr(services, "MAX_ATTACHMENT_BYTES", len(PDF))
    monkeypatch.setattr(services, "MAX_ATTACHMENTS_TOTAL_BYTES", 2 * len(PDF) - 1)
    too_much = client.post("/api/v1/dossiers", json=body(attachments=[_attachment(), _attachment()]),
                           headers=officer)
    assert too_much.status_code == 422
    assert too_much.get_json()["error"]["fields"] == {"attachments": [f"at most {2 * len(PDF) - 1} bytes in total"]}
    assert stored(app) == before
    exactly = client.post("/api/v1/dossiers", json=body(attachments=[_attachment()]), headers=officer)
    assert exactly.status_code == 201  # the limit itself is allowed


def test_a_body_over_the_request_limit_is_refused_with_json_413(app, monkeypatch):
    client = app.test_client()
    officer = auth(client, "onestop.anhoathinh")
    assert app.config["MAX_CONTENT_LENGTH"] > 40 * 1024 * 1024  # 30 MiB of files in base64, and the form
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    before = stored(app)
    response = client.post("/api/v1/dossiers", json=body(attachments=[upload("big.pdf", PDF + bytes(2000),
                                                                             "application/pdf")]), headers=officer)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert stored(app) == before
