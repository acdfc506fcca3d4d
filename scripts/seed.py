"""Demo data (development and test only): communes, users, calendar, catalogue, cases in every state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import catalogue, clock, jobs, services
from engine.calendar import to_vn
from engine.db import transaction
from engine.models import Dossier, Role, Task, Unit, UnitTarget, User, UserRole
from engine.security import hash_password
from engine.services import ServiceHandler

DEMO_PASSWORD = "Demo@12345"  # noqa: S105 - documented demo password (API.md), refused in production
DEMO_ONLINE_TARGET = 50.0  # percent of dossiers submitted online, the communes' demo target for the year
DEMO_UNITS = (
    ("anhoathinh", "UBND xã An Hòa Thịnh", "000.20.42.H42"),
    ("luongphong", "UBND xã Lương Phong", "000.23.15.H06"),
)
UNIT_ROLES = (
    (Role.ONESTOP, "Cán bộ một cửa"),
    (Role.JUSTICE, "Công chức Tư pháp – Hộ tịch"),
    (Role.CULTURE, "Công chức Văn hoá – Xã hội"),
    (Role.LEADER, "Chủ tịch UBND xã"),
)
GLOBAL_USERS = ((Role.DESIGNER, "Thiết kế quy trình"), (Role.AUDITOR, "Kiểm tra viên"), (Role.ADMIN, "Quản trị"))
CITIZEN = {"username": "001099012345", "full_name": "Nguyễn Văn An", "phone": "0900000001",
           "email": "an.nguyen@example.vn"}


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    unit: str | None


def _user(session: Session, username: str, full_name: str, roles: list[str], **fields: object) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, full_name=full_name, password_hash=hash_password(DEMO_PASSWORD), **fields)
        user.role_rows = [UserRole(role=r) for r in roles]
        session.add(user)
    return user


def seed_demo(factory: sessionmaker[Session], handler: ServiceHandler, *, lease: timedelta,
              secret_key: str | None = None) -> list[Login]:
    """Idempotent: what exists is kept; returns the demo logins. Each demo step is its own
    transaction and the service calls it starts run before the next step, as in production.
    With ``secret_key``, a demo certificate authority and a signing certificate per leader."""
    with transaction(factory) as session:
        logins = _seed_accounts(session)
        if secret_key:
            _seed_certificates(session, secret_key)
        catalogue.sync_catalogue(session, actor=services.SYSTEM_ACTOR)
        has_cases = bool(session.scalar(select(func.count()).select_from(Dossier)))
    if not has_cases:
        _demo_cases(factory, handler, lease=lease)
    return logins


def _seed_certificates(session: Session, secret_key: str) -> None:
    """The demo CA and a PKCS#12 signing certificate for every leader who has none."""
    from engine import signing

    signing.ensure_authority(session, secret_key)
    leaders = session.scalars(select(User).join(UserRole, UserRole.user_id == User.id)
                              .where(UserRole.role == Role.LEADER.value)).all()
    for leader in leaders:
        if signing.credential_of(session, leader.id) is None:
            signing.issue_certificate(session, leader, secret_key)


def _seed_accounts(session: Session) -> list[Login]:
    services.seed_calendar(session)
    logins: list[Login] = []
    for code, name, agency in DEMO_UNITS:
        unit = session.scalar(select(Unit).where(Unit.code == code))
        if unit is None:
            unit = Unit(code=code, name=name, agency_code=agency)
            session.add(unit)
            session.flush()
        year = to_vn(clock.now()).year
        if session.get(UnitTarget, (unit.id, year)) is None:
            session.add(UnitTarget(unit_id=unit.id, year=year, online_rate=DEMO_ONLINE_TARGET))
        for role, title in UNIT_ROLES:
            username = f"{role.value}.{code}"
            _user(session, username, f"{title} {name.removeprefix('UBND ')}", [role.value],
                  unit_id=unit.id, title=title)
            logins.append(Login(username, role.value, code))
        # A youth volunteer at the commune's computer corner (assisted submission).
        _user(session, f"volunteer.{code}", f"Tình nguyện viên {name.removeprefix('UBND ')}", [Role.VOLUNTEER.value],
              unit_id=unit.id, title="Tình nguyện viên")
        logins.append(Login(f"volunteer.{code}", Role.VOLUNTEER.value, code))
    for role, title in GLOBAL_USERS:
        _user(session, role.value, title, [role.value], title=title)
        logins.append(Login(role.value, role.value, None))
    _user(session, CITIZEN["username"], CITIZEN["full_name"], [Role.CITIZEN.value],
          id_number=CITIZEN["username"], phone=CITIZEN["phone"], email=CITIZEN["email"],
          date_of_birth=date(1999, 5, 12), phone_verified_at=clock.now())
    logins.append(Login(CITIZEN["username"], Role.CITIZEN.value, None))
    session.flush()
    return logins


def _complete(session: Session, dossier_id: int, step: str, data: dict[str, object]) -> None:
    task = session.scalar(select(Task).where(Task.dossier_id == dossier_id, Task.spec_name == step,
                                             Task.state == "ready"))
    assert task is not None, f"dossier {dossier_id} has no open {step}"
    user = session.scalar(select(User).where(User.unit_id == task.unit_id, User.role_rows.any(role=task.role)))
    assert user is not None
    services.complete_task(session, task.id, actor=services.Actor.of(user), data=data)


APPLICANTS = [
    {"type": "individual", "full_name": "Nguyễn Văn An", "id_number": "001099012345", "phone": "0900000001"},
    {"type": "individual", "full_name": "Trần Thị Bình", "id_number": "042190000123", "phone": "0912345678"},
    {"type": "individual", "full_name": "Lê Minh Châu", "id_number": "024095001234", "phone": "0987654321"},
]
ACCEPT = ("receive", {"decision": "accept"})
APPRAISE = ("appraise", {"decision": "propose_approve", "marital_status": "single"})
APPROVE = ("approve", {"decision": "approve"})
DEMO_PATHS: list[tuple[str, list[tuple[str, dict[str, object]]]]] = [
    ("counter", []),  # waiting for the one-stop check
    ("counter", [ACCEPT]),  # at appraisal
    ("counter", [ACCEPT, APPRAISE]),  # at the leader
    ("online", [("receive", {"decision": "supplement", "note": "Thiếu tờ khai có chữ ký"})]),  # supplement
    ("online", [("receive", {"decision": "refuse", "note": "Không thuộc thẩm quyền của xã"})]),  # refused
    ("online", [ACCEPT, APPRAISE, APPROVE]),  # waiting for online payment
    ("counter", [ACCEPT, APPRAISE, APPROVE, ("hand_back", {"decision": "delivered", "fee_collected": 10000})]),
]


BIRTH_FORM = {"child_full_name": "Nguyễn Minh Khang", "birth_date": "2026-11-10", "gender": "male",
              "birth_place": "Trạm y tế xã", "mother_full_name": "Trần Thị Bình", "requester_relationship": "Mẹ"}
EXTRACT_FORM = {"event_kind": "birth", "person_full_name": "Lê Minh Châu", "requester_relationship": "Bản thân",
                "copies": 2}
POOR_FORM = {"household_head": "Trần Văn Hùng", "residence": "Thôn Đông", "area": "rural", "members": 4,
             "request": "poor", "reason": "Chủ hộ tai nạn lao động, mất nguồn thu nhập"}
POOR_REVIEW = {"decision": "propose_approve", "classification": "poor", "area": "rural",
               "income_per_person_vnd": 1200000, "deprivations": ["employment", "health_insurance", "housing_quality"]}
OTHER_CASES: list[tuple[str, dict[str, object], str, list[tuple[str, dict[str, object]]]]] = [
    ("birth_registration", BIRTH_FORM, "online", []),  # same-day procedure, waiting for the one-stop check
    ("civil_status_extract_copy", EXTRACT_FORM, "counter", [ACCEPT]),  # at appraisal, 16,000 VND due
    ("poor_household_recognition", POOR_FORM, "counter", [ACCEPT, ("review", POOR_REVIEW)]),  # public posting
]


def _demo_cases(factory: sessionmaker[Session], handler: ServiceHandler, *, lease: timedelta) -> None:
    """Dossiers per commune: marital status ones at every waiting point of the lifecycle, and a
    few of other procedures (same day, with a fee, during a public posting)."""
    with transaction(factory) as session:
        citizen_id = session.scalar(select(User.id).where(User.username == CITIZEN["username"]))
    for unit_code, name, _agency in DEMO_UNITS:
        marital_form = {"purpose": "Kết hôn", "residence": "Thôn 1, " + name}
        cases = [("marital_status_confirmation", marital_form, channel, path) for channel, path in DEMO_PATHS]
        for i, (procedure, form, channel, path) in enumerate(cases + OTHER_CASES):
            applicant = APPLICANTS[i % len(APPLICANTS)]
            with transaction(factory) as session:
                dossier_id = services.submit_dossier(
                    session, procedure_code=procedure, unit_code=unit_code, applicant=applicant, form=form,
                    channel=channel, actor=services.SYSTEM_ACTOR,
                    citizen_id=citizen_id if applicant["id_number"] == CITIZEN["username"] else None,
                ).id
            for step, data in path:
                jobs.drain(factory, handler, lease=lease)
                with transaction(factory) as session:
                    _complete(session, dossier_id, step, data)
            jobs.drain(factory, handler, lease=lease)
