"""Factory helpers for tests: units, users, procedures and dossiers with sensible defaults."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import catalogue, services
from engine.models import Procedure, Task, Unit, User, UserRole

_seq = itertools.count(1)
PROCESSES = Path(__file__).resolve().parent.parent / "processes"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASE_DEMO = "case_demo"  # the engine test process (tests/fixtures/case_demo.bpmn)


def create_unit(session: Session, *, code: str | None = None) -> Unit:
    n = next(_seq)
    unit = Unit(code=code or f"unit{n}", name=f"UBND xã Thử {n}", agency_code=f"000.00.{n:02d}.H99")
    session.add(unit)
    session.flush()
    return unit


def create_user(session: Session, unit: Unit | None, role: str, *, username: str | None = None) -> User:
    user = User(username=username or f"{role}.{next(_seq)}", full_name=f"Cán bộ {role}",
                unit_id=unit.id if unit else None)
    user.role_rows = [UserRole(role=role)]
    session.add(user)
    session.flush()
    return user


APPRAISE_FORM = {
    "type": "object", "required": ["decision"],
    "properties": {"decision": {"enum": ["propose_approve", "propose_refuse"]}, "note": {"type": "string"}},
}


def install_procedure(session: Session, code: str = CASE_DEMO) -> Procedure:
    """The engine test procedure, or a real one from processes/ by code."""
    if code == CASE_DEMO:
        forms = {**catalogue.lifecycle_forms(PROCESSES), "appraise": APPRAISE_FORM}
        return install_bpmn(session, CASE_DEMO, (FIXTURES / "case_demo.bpmn").read_text(),
                            catalogue_data={"task_forms": forms})
    services.seed_calendar(session)
    return catalogue.sync_procedure(session, catalogue.load_definition(PROCESSES / code),
                                    actor=services.SYSTEM_ACTOR)


def install_bpmn(session: Session, code: str, bpmn_xml: str, *, legal: tuple[float, str] = (3, "working_days"),
                 lane_roles: dict[str, str] | None = None, catalogue_data: dict[str, Any] | None = None) -> Procedure:
    """A procedure made from a BPMN string (test fixtures); reused when it exists already."""
    from engine import workflow

    services.seed_calendar(session)
    existing = session.scalar(select(Procedure).where(Procedure.code == code))
    if existing is not None:
        if services.current_version(session, existing).content_hash != workflow.content_hash(bpmn_xml):
            services.deploy_process_model(session, existing, bpmn_xml, actor=services.SYSTEM_ACTOR,
                                          lane_roles=lane_roles or {})
        return existing
    procedure = Procedure(code=code, name_vi=code, name_en=code, legal_time_value=legal[0],
                          legal_time_unit=legal[1], catalogue=catalogue_data or {})
    session.add(procedure)
    session.flush()
    services.deploy_process_model(session, procedure, bpmn_xml, actor=services.SYSTEM_ACTOR,
                                  lane_roles=lane_roles or {})
    return procedure


def submit(session: Session, unit: Unit, *, procedure: str = CASE_DEMO, **kw: Any) -> Any:
    return services.submit_dossier(
        session, procedure_code=procedure, unit_code=unit.code,
        applicant=kw.pop("applicant", {"type": "individual", "full_name": "Nguyễn Văn A", "phone": "0900000001"}),
        actor=kw.pop("actor", services.SYSTEM_ACTOR), **kw,
    )


def open_task(session: Session, dossier_id: int, spec_name: str) -> Task:
    task = session.scalar(select(Task).where(Task.dossier_id == dossier_id, Task.spec_name == spec_name,
                                             Task.state.in_(("ready", "started"))))
    assert task is not None, f"no open task {spec_name}"
    return task


def complete(session: Session, dossier_id: int, spec_name: str, data: dict[str, Any],
             actor: services.Actor = services.SYSTEM_ACTOR) -> Any:
    return services.complete_task(session, open_task(session, dossier_id, spec_name).id, actor=actor, data=data)


def run_services(session: Session, handler: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """Perform every due service call inside the test's session; returns (operation, params) done."""
    from datetime import timedelta

    from engine.models import ServiceCall

    done = []
    while True:
        calls = session.scalars(select(ServiceCall).where(ServiceCall.status == "pending")).all()
        if not calls:
            return done
        for call in calls:
            services.take_service_call(session, call.id, lease=timedelta(seconds=30))
            result = handler(call.operation, call.params, call.id) if handler else {"ok": True}
            services.finish_service_call(session, call.id, result)
            done.append((call.operation, dict(call.params)))


def api_login_body(app, username: str, password: str) -> dict[str, str]:
    """The API login body for a demo user; leaders get a TOTP secret (as at their first back-office
    login) and a fresh code for the project clock's current time step."""
    import pyotp
    from sqlalchemy import select

    from engine import clock
    from engine.db import transaction
    from engine.models import User

    body = {"username": username, "password": password}
    if username.startswith("leader."):
        with transaction(app.extensions["motcua"].factory) as session:
            user = session.scalar(select(User).where(User.username == username))
            if not user.totp_secret:
                user.totp_secret = pyotp.random_base32()
            user.totp_last_step = None
            secret = user.totp_secret
        body["otp"] = pyotp.TOTP(secret).at(clock.now())
    return body


def sms_code(app, phone: str) -> str:
    """The last one-time code the SMS sandbox received for ``phone``."""
    import re

    from connectors import sandbox
    from engine.db import transaction

    with transaction(app.extensions["motcua"].factory) as session:
        texts = [r.payload["text"] for r in sandbox.records(session, provider="sms", recipient=phone)]
    codes = [m.group(1) for t in texts if (m := re.search(r"la ([0-9]{6})", t))]
    assert codes, f"no code was sent to {phone}"
    return codes[-1]


def api_token(client, username: str, password: str) -> str:
    """A bearer token for any demo user: leaders with their TOTP code, citizens with the login code
    read from the SMS sandbox."""
    response = client.post("/api/v1/auth/login", json=api_login_body(client.application, username, password))
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    if answer.get("otp_required") and answer.get("method") == "sms":
        from sqlalchemy import select

        from engine.db import transaction
        from engine.models import User

        with transaction(client.application.extensions["motcua"].factory) as session:
            phone = session.scalar(select(User.phone).where(User.username == username))
        response = client.post("/api/v1/auth/otp", json={"username": username,
                                                         "otp": sms_code(client.application, phone)})
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
    return str(answer["token"])


class Provider:
    """A provider's HTTP endpoint on 127.0.0.1 (a thread): records each POST's signature and raw
    body, answers with the queued (status, JSON body) pairs, then 200."""

    def __init__(self, *answers: tuple[int, dict[str, Any] | None]):
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        self.received: list[tuple[str, bytes]] = []
        self.answers = list(answers)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                import json

                raw = self.rfile.read(int(self.headers["Content-Length"]))
                provider.received.append((self.headers.get("X-Signature", ""), raw))
                status, body = provider.answers.pop(0) if provider.answers else (200, None)
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Provider:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


DEMO_PROCEDURE = "marital_status_confirmation"
COUNTER_APPLICANT = {"type": "individual", "full_name": "Phạm Thị Dung", "phone": "0903334444"}
COUNTER_FORM = {"purpose": "Kết hôn", "residence": "Thôn Đông, xã An Hòa Thịnh"}


def demo_app(tmp_path_factory: Any, name: str, *, certificates: bool = False, **overrides: Any) -> Any:
    """A back-office app on a fresh SQLite database with the demo accounts (and, asked, the leaders'
    certificates) and the marital status procedure; a generator for module fixtures: ``yield from``."""
    from backoffice.app import create_app
    from engine.config import Settings
    from engine.db import transaction
    from engine.migrate import upgrade
    from scripts.seed import _seed_accounts, _seed_certificates

    path = tmp_path_factory.mktemp(name) / f"{name}.db"
    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}", **overrides)
    upgrade(settings)
    application = create_app(settings)
    with transaction(application.extensions["motcua"].factory) as session:
        _seed_accounts(session)
        if certificates:
            _seed_certificates(session, settings.secret_key)
        catalogue.sync_procedure(session, catalogue.load_definition(catalogue.default_processes_dir() / DEMO_PROCEDURE),
                                 actor=services.SYSTEM_ACTOR)
    yield application
    application.extensions["motcua"].engine.dispose()


def counter_case(app: Any) -> tuple[str, str | None]:
    """An Hòa Thịnh's counter dossier of the demo procedure, its first service calls done: (code,
    the id of its open task)."""
    from datetime import timedelta

    from engine import jobs
    from engine.db import transaction
    from engine.models import Dossier

    factory = app.extensions["motcua"].factory
    with transaction(factory) as session:
        code = services.submit_dossier(session, procedure_code=DEMO_PROCEDURE, unit_code="anhoathinh",
                                       form=COUNTER_FORM, channel="counter", actor=services.SYSTEM_ACTOR,
                                       applicant=COUNTER_APPLICANT).code
    jobs.drain(factory, app.extensions["motcua"].registry, lease=timedelta(seconds=30))
    with transaction(factory) as session:
        dossier_id = session.scalar(select(Dossier.id).where(Dossier.code == code))
        return code, session.scalar(select(Task.id).where(Task.dossier_id == dossier_id, Task.state == "ready"))


def csrf_of(client: Any, path: str = "/login") -> str:
    """The CSRF token of the page form at ``path`` for this browser session."""
    import re

    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no form token on {path}"
    return found.group(1)


def page_login(app: Any, username: str, client: Any = None) -> Any:
    """A browser session of a demo officer, designer, auditor or admin (leaders pass their TOTP code)."""
    from scripts.seed import DEMO_PASSWORD

    client = client or app.test_client()
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                           "csrf_token": csrf_of(client)})
    if response.headers.get("Location", "").endswith("/login/otp"):
        code = api_login_body(app, username, DEMO_PASSWORD)["otp"]  # a fresh code for the page login
        response = client.post("/login/otp", data={"otp": code, "csrf_token": csrf_of(client, "/login/otp")})
    assert response.status_code == 302, (username, response.status_code, response.get_data(as_text=True)[:300])
    return client
