"""The auditor's workspace and the reports through the Flask test client: who may read what, the
search and its exports (CSV with Vietnamese letters, XLSX), a case's timeline with the data each
step changed and its signed document checked, the chain check finding a tampered event, the
reports API, the register as PDF and the dashboard's charts."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select, text

from backoffice.app import create_app
from engine import catalogue, clock, jobs, services
from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import transaction
from engine.migrate import upgrade
from engine.models import AuditEvent, Dossier, Task, Unit, User, UserRole
from scripts.seed import DEMO_PASSWORD, _seed_accounts, _seed_certificates
from tests.factories import api_login_body

CODE = "birth_registration"
FORM = {"child_full_name": "Nguyễn Minh An", "birth_date": "2026-11-10", "gender": "male",
        "birth_place": "Trạm y tế xã An Hòa Thịnh, Hà Tĩnh", "mother_full_name": "Phạm Thị Dung",
        "father_full_name": "Nguyễn Văn Bình", "requester_relationship": "Mẹ"}
APPRAISE = {"decision": "propose_approve", "birth_proof": "birth_certificate", "parents_marriage_checked": True,
            "personal_id_number": "042226000123"}
APPLICANT = {"type": "individual", "full_name": "Phạm Thị Dung", "id_number": "001199000111", "phone": "0903334444"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "audit.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}")
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        _seed_certificates(session, settings.secret_key)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / CODE),
                                 actor=services.SYSTEM_ACTOR)
        # an auditor bound to one commune
        unit = session.scalar(select(Unit).where(Unit.code == "luongphong"))
        auditor = session.scalar(select(User).where(User.username == "auditor"))
        local = User(username="auditor.luongphong", full_name="Thanh tra xã Lương Phong", unit_id=unit.id,
                     password_hash=auditor.password_hash)
        local.role_rows = [UserRole(role="auditor")]
        session.add(local)
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


def _submit(app, unit: str, applicant: dict | None = None) -> str:
    with transaction(_factory(app)) as session:
        code = services.submit_dossier(session, procedure_code=CODE, unit_code=unit, form=FORM, channel="counter",
                                       actor=services.SYSTEM_ACTOR, applicant=applicant or APPLICANT).code
    _drain(app)
    return code


@pytest.fixture(scope="module")
def cases(app) -> dict[str, str]:
    """In An Hòa Thịnh a birth registration (same day) approved and signed on the day it was received
    (on time), and one still open; in Lương Phong one just received."""
    clock.freeze(datetime(2026, 11, 19, 9, 0, tzinfo=VN_TZ))
    signed = _submit(app, "anhoathinh")
    _complete(app, signed, "receive", {"decision": "accept"}, "onestop.anhoathinh")
    _complete(app, signed, "appraise", APPRAISE, "justice.anhoathinh")
    _complete(app, signed, "approve", {"decision": "approve"}, "leader.anhoathinh")
    open_case = _submit(app, "anhoathinh", {**APPLICANT, "full_name": "Trần Văn Bảo", "id_number": "001099000222",
                                            "phone": "0912345678"})
    other = _submit(app, "luongphong", {**APPLICANT, "full_name": "Lê Thị Cúc", "id_number": "001099000333"})
    clock.freeze(datetime(2026, 11, 20, 10, 0, tzinfo=VN_TZ))
    return {"signed": signed, "open": open_case, "other": other}


def _csrf(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _page_client(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                           "csrf_token": _csrf(client)})
    if username.startswith("leader."):
        body = api_login_body(app, username, DEMO_PASSWORD)
        response = client.post("/login/otp", data={"otp": body["otp"], "csrf_token": _csrf(client, "/login/otp")})
    assert response.status_code == 302
    return client


def _bearer(app, username: str) -> dict[str, str]:
    answer = app.test_client().post("/api/v1/auth/login", json=api_login_body(app, username, DEMO_PASSWORD))
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": "Bearer " + answer.get_json()["token"]}


# --- search -----------------------------------------------------------------------------------------

def test_auditor_search_finds_by_code_name_id_and_phone_across_units(app, cases):
    client, auth = app.test_client(), _bearer(app, "auditor")

    def codes(**query) -> list[str]:
        answer = client.get("/api/v1/audit/dossiers", headers=auth, query_string=query)
        assert answer.status_code == 200, answer.get_json()
        return [r["code"] for r in answer.get_json()["rows"]]

    assert codes(q=cases["signed"]) == [cases["signed"]]
    assert cases["signed"] in codes(q=cases["signed"][:-2])  # the beginning of a code
    assert codes(q="Trần Văn") == [cases["open"]]
    assert codes(q="trần văn") == [cases["open"]]  # typed in lower case
    assert codes(q="001099000333") == [cases["other"]]
    assert codes(q="0912345678") == [cases["open"]]
    assert set(codes()) >= set(cases.values())  # the province
    assert codes(unit="luongphong") == [cases["other"]]
    assert codes(outcome="on_time") == [cases["signed"]]
    assert set(codes(outcome="open")) == {cases["open"], cases["other"]}
    overdue = set(codes(overdue="1"))  # both same-day dossiers of Thu 19/11 are past 17:00 that day
    assert {cases["open"], cases["other"]} <= overdue
    assert cases["signed"] not in overdue
    page = client.get("/api/v1/audit/dossiers", headers=auth, query_string={"limit": 1}).get_json()
    assert len(page["rows"]) == 1
    assert page["next"] is not None
    after = client.get("/api/v1/audit/dossiers", headers=auth,
                       query_string={"limit": 1, "after": page["next"]}).get_json()
    assert after["rows"][0]["code"] != page["rows"][0]["code"]


def test_search_is_scoped_and_checked(app, cases):
    client = app.test_client()
    local = _bearer(app, "auditor.luongphong")
    rows = client.get("/api/v1/audit/dossiers", headers=local).get_json()["rows"]
    assert [r["code"] for r in rows] == [cases["other"]]
    assert client.get("/api/v1/audit/dossiers", headers=local, query_string={"unit": "anhoathinh"}).status_code == 403
    assert client.get(f"/api/v1/audit/dossiers/{cases['signed']}/timeline", headers=local).status_code == 403
    officer = _bearer(app, "onestop.anhoathinh")
    assert client.get("/api/v1/audit/dossiers", headers=officer).status_code == 403
    assert client.get("/api/v1/audit/dossiers").status_code == 401
    bad = client.get("/api/v1/audit/dossiers", headers=local, query_string={"from": "2026-13-01", "limit": "0"})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"from", "limit"}


def test_search_exports_as_csv_and_xlsx(app, cases):
    client = _page_client(app, "auditor")
    page = client.get("/audit/?q=Ph%E1%BA%A1m")
    assert page.status_code == 200
    assert cases["signed"] in page.get_data(as_text=True)
    exported = client.get("/audit/export.csv")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].endswith('.csv"')
    body = exported.get_data().decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads UTF-8 only with the byte-order mark
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][0] == "Mã hồ sơ"  # Vietnamese by default
    assert {r[0] for r in rows[1:]} >= set(cases.values())
    assert any("Lê Thị Cúc" in r for r in rows)
    workbook = load_workbook(io.BytesIO(client.get("/audit/export.xlsx?unit=luongphong").get_data()))
    sheet = workbook.active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "Mã hồ sơ"
    assert [v[0] for v in values[1:]] == [cases["other"]]


def test_exported_text_cannot_run_as_a_spreadsheet_formula(app, cases):
    formula = '=HYPERLINK("http://x")'
    code = _submit(app, "anhoathinh", {**APPLICANT, "full_name": formula, "id_number": "001099000444"})
    client = _page_client(app, "auditor")
    rows = list(csv.reader(io.StringIO(client.get("/audit/export.csv?q=001099000444").get_data().decode()
                                       .lstrip("\ufeff"))))
    (row,) = rows[1:]
    assert row[0] == code
    assert row[3] == "'=HYPERLINK(\"http://x\")"


# --- a case ----------------------------------------------------------------------------------------

def test_case_page_shows_timeline_changes_documents_and_records_the_read(app, cases):
    client = _page_client(app, "auditor")
    page = client.get(f"/audit/cases/{cases['signed']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="audit-timeline"' in html
    assert "personal_id_number" in html
    assert "042226000123" in html
    assert 'id="signed-documents"' in html
    assert "hợp lệ" in html
    assert "khớp" in html
    assert "data-diagram" in html  # the diagram with the path taken
    with transaction(_factory(app)) as session:
        read = session.scalar(select(AuditEvent).where(AuditEvent.dossier_code == cases["signed"],
                                                       AuditEvent.action == "dossier_viewed",
                                                       AuditEvent.actor == "auditor").order_by(AuditEvent.id.desc()))
        assert read is not None
        assert read.data["purpose"] == "audit timeline"
    signed = re.search(r'href="(/audit/cases/[^"]+/signed/\d+\.pdf)"', html).group(1)
    pdf = client.get(signed)
    assert pdf.status_code == 200
    assert pdf.get_data().startswith(b"%PDF")


def test_history_export_lists_every_event_with_its_changes(app, cases):
    client = _page_client(app, "auditor")
    workbook = load_workbook(io.BytesIO(client.get(f"/audit/cases/{cases['signed']}/history.xlsx").get_data()))
    rows = [[c.value for c in row] for row in workbook.active.iter_rows()]
    header, events = rows[0], rows[1:]
    assert header[:4] == ["Sự kiện", "Thời gian", "Người thực hiện", "Thao tác"]
    actions = [r[3] for r in events]
    assert actions[0] == "dossier_submitted"
    assert "document_signed" in actions
    assert "dossier_viewed" in actions
    appraisal = next(r for r in events if r[3] == "task_completed" and "personal_id_number" in (r[5] or ""))
    assert "→ 042226000123" in appraisal[5]
    with transaction(_factory(app)) as session:
        dossier_id = session.scalar(select(Dossier.id).where(Dossier.code == cases["signed"]))
        stored = session.scalar(select(text("count(*)")).select_from(AuditEvent).where(
            AuditEvent.dossier_id == dossier_id))
    assert len(events) == stored - 1  # all but the read of this very export, recorded after it was made


def test_leaders_and_officers_do_not_get_the_auditor_workspace(app, cases):
    for username in ("leader.anhoathinh", "onestop.anhoathinh"):
        client = _page_client(app, username)
        assert client.get("/audit/").status_code == 403
        assert client.get(f"/audit/cases/{cases['signed']}").status_code == 403
        assert client.get("/audit/chain").status_code == 403


# --- the chain ---------------------------------------------------------------------------------------

def test_chain_check_shows_the_first_tampered_event(app, cases):
    client, auth = _page_client(app, "auditor"), _bearer(app, "auditor")
    assert app.test_client().get("/api/v1/audit/verify", headers=auth).get_json()["ok"] is True
    assert "nguyên vẹn" in client.get("/audit/chain").get_data(as_text=True)
    with transaction(_factory(app)) as session:
        victim = session.scalar(select(AuditEvent).where(AuditEvent.dossier_code == cases["other"])
                                .order_by(AuditEvent.id))
        victim_id, original = victim.id, dict(victim.data)
        victim.data = {**original, "procedure": "forged"}
    try:
        answer = app.test_client().get("/api/v1/audit/verify", headers=auth).get_json()
        assert (answer["ok"], answer["first_broken_id"]) == (False, victim_id)
        page = client.get("/audit/chain").get_data(as_text=True)
        assert f"sự kiện {victim_id}" in page
        assert cases["other"] in page
    finally:
        with transaction(_factory(app)) as session:
            session.get(AuditEvent, victim_id).data = original
    assert app.test_client().get("/api/v1/audit/verify", headers=auth).get_json()["ok"] is True
    officer = _bearer(app, "onestop.anhoathinh")
    assert app.test_client().get("/api/v1/audit/verify", headers=officer).status_code == 403


# --- reports -------------------------------------------------------------------------------------------

def test_ontime_report_api_follows_the_contract_and_the_scope(app, cases):
    client = app.test_client()
    auditor, leader = _bearer(app, "auditor"), _bearer(app, "leader.anhoathinh")
    november = {"from": "2026-11-01", "to": "2026-11-30"}
    report = client.get("/api/v1/reports/ontime", headers=auditor, query_string=november).get_json()
    (row,) = [r for r in report["rows"] if r["procedure"] == CODE]
    assert {k: row[k] for k in ("finished", "early", "on_time", "late", "ontime_rate")} == \
        {"finished": 1, "early": 0, "on_time": 1, "late": 0, "ontime_rate": 1.0}
    assert row["received"] >= 3
    mine = client.get("/api/v1/reports/ontime", headers=leader, query_string={**november, "by": "unit"}).get_json()
    assert [r["unit"] for r in mine["rows"]] == ["anhoathinh"]
    assert client.get("/api/v1/reports/ontime", headers=leader,
                      query_string={**november, "unit": "luongphong"}).status_code == 403
    bad = client.get("/api/v1/reports/ontime", headers=auditor, query_string={"from": "2026-11-30", "to": "2026-11-01"})
    assert bad.status_code == 422
    assert "to" in bad.get_json()["error"]["fields"]
    officer = _bearer(app, "justice.anhoathinh")
    assert client.get("/api/v1/reports/ontime", headers=officer).status_code == 403
    assert client.get("/api/v1/reports/index-scores", headers=auditor, query_string=november).status_code == 200
    online = client.get("/api/v1/reports/online", headers=auditor, query_string=november).get_json()
    assert {u["unit"] for u in online["units"]} == {"anhoathinh", "luongphong"}


def test_report_pages_register_pdf_and_dashboard(app, cases):
    client = _page_client(app, "leader.anhoathinh")
    page = client.get("/reports/?from=2026-11-01&to=2026-11-30")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="ontime-report"' in html
    assert "100.0%" in html
    xlsx = load_workbook(io.BytesIO(client.get("/reports/ontime.xlsx?from=2026-11-01&to=2026-11-30").get_data()))
    rows = [[c.value for c in row] for row in xlsx.active.iter_rows()]
    assert rows[0][0] == "Thủ tục"
    assert rows[-1][0] == "Tổng số"
    register = client.get("/reports/register?year=2026&month=11").get_data(as_text=True)
    assert cases["signed"] in register
    assert cases["other"] not in register
    assert client.get("/reports/register?year=2026&month=13").status_code == 422
    assert cases["signed"] not in client.get("/reports/register?year=2026&month=10").get_data(as_text=True)
    pdf = client.get("/reports/register.pdf?year=2026&month=")
    assert pdf.status_code == 200
    text_of_pdf = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.get_data())).pages)
    assert "SỔ THEO DÕI HỒ SƠ" in text_of_pdf.upper()
    assert cases["signed"].split("-")[0] in text_of_pdf
    board = client.get("/reports/dashboard").get_data(as_text=True)
    assert 'id="trend-chart"' in board
    assert "<polyline" in board
    assert client.get("/reports/register?unit=luongphong").status_code == 403
    assert client.get("/reports/?from=nonsense").status_code == 422
