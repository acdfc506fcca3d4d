"""Signed results: the leader's approval makes the result document of the procedure, signed as
PAdES by that leader with a visible block; pyHanko's validator accepts it against the deployment's
authority; a one-byte change fails, and the public verify page says so (auditors see the report)."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader
from sqlalchemy import select

from backoffice.app import create_app
from connectors import build_registry
from engine import catalogue, clock, jobs, paperwork, services, signing
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, Document, Dossier, SigningCredential, Task, User
from scripts.seed import DEMO_PASSWORD, _seed_accounts, _seed_certificates

CODE = "birth_registration"
FORM = {"child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-10", "gender": "male",
        "birth_place": "Trạm y tế xã An Hòa Thịnh, Hà Tĩnh", "mother_full_name": "Phạm Thị Dung",
        "father_full_name": "Nguyễn Văn Bình", "requester_relationship": "Mẹ"}
APPRAISE = {"decision": "propose_approve", "birth_proof": "birth_certificate", "parents_marriage_checked": True,
            "personal_id_number": "042226000123"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("signed") / "signed.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        _seed_certificates(session, settings.secret_key)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / CODE),
                                 actor=services.SYSTEM_ACTOR)
    yield application
    application.extensions["motcua"].engine.dispose()


def _factory(app):
    return app.extensions["motcua"].factory


def _drain(app) -> None:
    jobs.drain(_factory(app), app.extensions["motcua"].registry, lease=timedelta(seconds=30))


def _complete(app, code: str, step: str, data: dict, username: str) -> None:
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        task = session.scalar(select(Task).where(Task.dossier_id == dossier.id, Task.spec_name == step,
                                                 Task.state == "ready"))
        user = session.scalar(select(User).where(User.username == username))
        services.complete_task(session, task.id, data=data, actor=services.Actor.of(user))
    _drain(app)


@pytest.fixture(scope="module")
def approved(app) -> str:
    """A birth registration approved by the leader of An Hòa Thịnh: its result is signed."""
    clock.freeze(datetime(2026, 11, 19, 9, 0, tzinfo=VN_TZ))
    with transaction(_factory(app)) as session:
        code = services.submit_dossier(session, procedure_code=CODE, unit_code="anhoathinh", form=FORM,
                                       channel="counter", actor=services.SYSTEM_ACTOR,
                                       applicant={"type": "individual", "full_name": "Phạm Thị Dung",
                                                  "phone": "0903334444"}).code
    _drain(app)
    _complete(app, code, "receive", {"decision": "accept"}, "onestop.anhoathinh")
    _complete(app, code, "appraise", APPRAISE, "justice.anhoathinh")
    _complete(app, code, "approve", {"decision": "approve"}, "leader.anhoathinh")
    return code


def _document(app, code: str) -> Document:
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == code))
        documents = paperwork.signed_documents(session, dossier)
        assert len(documents) == 1
        document = documents[0]
        _ = document.content  # load the deferred bytes before the session closes
        session.expunge(document)
        return document


def _roots(app) -> list[str]:
    with transaction(_factory(app)) as session:
        return paperwork.trust_roots(session)


def test_the_approved_result_is_signed_by_the_approving_leader_and_validates(app, approved):
    document = _document(app, approved)
    assert document.kind == "result"
    with transaction(_factory(app)) as session:
        leader = session.scalar(select(User).where(User.username == "leader.anhoathinh"))
        assert document.signed_by_id == leader.id
        assert document.signer_name == leader.full_name
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "document_signed",
                                                        AuditEvent.dossier_id == document.dossier_id))
        assert event.data["sha256"] == document.sha256  # the document's hash is in the audit chain
    # pyHanko's own validator, against the deployment's authority only, offline.
    from asn1crypto import pem, x509

    roots = [x509.Certificate.load(pem.unarmor(root.encode())[2]) for root in _roots(app)]
    signature = PdfFileReader(io.BytesIO(document.content)).embedded_signatures[0]
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    status = signing.outside_event_loop(lambda: validate_pdf_signature(signature, context))
    assert (status.intact, status.valid, status.trusted) == (True, True, True)
    assert status.signing_cert.subject.native["common_name"] == leader.full_name
    assert status.coverage.name == "ENTIRE_FILE"
    assert signing.validate_pdf(document.content, _roots(app)).ok


def test_the_signature_block_is_visible_where_the_template_put_the_leader(app, approved):
    document = _document(app, approved)
    reader = PdfReader(io.BytesIO(document.content))
    widgets = [(index, annotation.get_object()) for index, page in enumerate(reader.pages)
               for annotation in page.get("/Annots") or [] if annotation.get_object().get("/FT") == "/Sig"]
    assert len(widgets) == 1
    index, widget = widgets[0]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    width, height = float(reader.pages[index].mediabox.width), float(reader.pages[index].mediabox.height)
    assert 0 <= x1 < x2 <= width
    assert 0 <= y1 < y2 <= height
    assert (x2 - x1) > 100
    assert (y2 - y1) > 40
    assert "/AP" in widget
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "NGUYỄN MINH AN" in text  # the birth certificate names the child (in capitals) …
    assert "042226000123" in text  # … with the identification number the justice officer entered


def test_signing_twice_with_the_same_step_makes_one_document(app, approved):
    first = _document(app, approved)
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == approved))
        again = paperwork.issue_signed(session, dossier, kind="result", key=first.key,
                                       secret_key=app.extensions["motcua"].settings.secret_key,
                                       verify_url="http://x/verify", issue_missing_certificate=False)
        assert (again.document_id, again.new) == (first.id, False)
        assert len(paperwork.signed_documents(session, dossier)) == 1


def _tampered(content: bytes) -> bytes:
    """One byte changed inside the signed content (a digit of the first page's content stream)."""
    data = bytearray(content)
    position = content.index(b"stream", len(content) // 10) + 40
    data[position] = (data[position] + 1) % 256
    return bytes(data)


def test_a_one_byte_change_fails_validation(app, approved):
    document = _document(app, approved)
    broken = signing.validate_pdf(_tampered(document.content), _roots(app))
    assert not broken.ok
    assert not broken.intact


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_the_verify_page_says_intact_or_changed(app, approved):
    document = _document(app, approved)
    client = app.test_client()
    page = client.get(f"/verify/{approved}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-valid="true"' in text
    assert "Toàn vẹn" in text
    assert document.signer_name in text
    assert "Phạm Thị Dung" not in text  # no personal data on the public page
    assert "Báo cáo kiểm tra chữ ký số" not in text  # the report is for auditors

    token = _csrf(client, f"/verify/{approved}")
    same = client.post(f"/verify/{approved}", data={"csrf_token": token,
                                                     "file": (io.BytesIO(document.content), "ket-qua.pdf")})
    assert same.status_code == 200
    assert "không bị thay đổi" in same.get_data(as_text=True)
    changed = client.post(f"/verify/{approved}", data={"csrf_token": token,
                                                        "file": (io.BytesIO(_tampered(document.content)), "x.pdf")})
    assert changed.status_code == 422
    assert "đã bị thay đổi sau khi ký" in changed.get_data(as_text=True)
    assert client.get("/verify/000.00.00.H00-000000-0000").status_code == 404


def test_a_changed_stored_document_is_reported_invalid_and_auditors_see_the_report(app, approved):
    document = _document(app, approved)
    with transaction(_factory(app)) as session:
        stored = session.get(Document, document.id)
        stored.content = _tampered(document.content)
    try:
        auditor = app.test_client()
        auditor.post("/login", data={"username": "auditor", "password": DEMO_PASSWORD,
                                     "csrf_token": _csrf(auditor, "/login")})
        text = auditor.get(f"/verify/{approved}").get_data(as_text=True)
        assert 'data-valid="false"' in text
        assert "đã bị thay đổi sau khi ký" in text
        assert "Báo cáo kiểm tra chữ ký số" in text
    finally:
        with transaction(_factory(app)) as session:
            session.get(Document, document.id).content = document.content


def test_without_a_certificate_production_does_not_sign(app, approved):
    with transaction(_factory(app)) as session:
        dossier = session.scalar(select(Dossier).where(Dossier.code == approved))
        for credential in session.scalars(select(SigningCredential).where(
                SigningCredential.user_id.is_not(None))):
            session.delete(credential)
        session.flush()
        with pytest.raises(paperwork.PaperworkError, match="no valid signing certificate"):
            paperwork.issue_signed(session, dossier, kind="result", key="another-step",
                                   secret_key="x" * 40, verify_url="http://x/verify", issue_missing_certificate=False)
        session.rollback()


def test_the_registry_signs_through_the_connector(app):
    assert "documents.sign_result" in build_registry(Settings(env="production", secret_key="x" * 40,
                                                              sandbox=False), _factory(app))
