"""Accounts: checking a login with lockout after repeated failures."""

from __future__ import annotations

import hmac
import math
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock
from engine.audit import record_event
from engine.models import User
from engine.security import verify_password

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


class LoginError(Exception):
    """Wrong credentials or a locked account; the message never says which part was wrong."""

    def __init__(self, message: str, *, locked: bool = False, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.locked = locked
        self.retry_after = retry_after  # seconds until a locked account opens again (Retry-After)


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``moment`` (at least 1): the value of a Retry-After header."""
    return max(1, math.ceil((moment - now).total_seconds()))


def _locked(user: User, now: datetime) -> LoginError:
    assert user.locked_until is not None
    return LoginError("account locked after repeated failures; try again later", locked=True,
                      retry_after=seconds_until(user.locked_until, now))


def authenticate(session: Session, username: str, password: str) -> User:
    """The user for these credentials; after MAX_FAILED_LOGINS failures the account is locked
    for LOCKOUT (a correct password does not open it early). Every outcome is audited."""
    now = clock.now()
    user = session.scalar(select(User).where(User.username == username.strip()).with_for_update())
    if user is None or not user.is_active:
        record_event(session, action="login_failed", actor=username[:80], data={"reason": "unknown"})
        raise LoginError("wrong username or password")
    if user.locked_until is not None and user.locked_until > now:
        record_event(session, action="login_refused", actor=user.username, actor_id=user.id,
                     data={"locked_until": user.locked_until.isoformat()})
        raise _locked(user, now)
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        data: dict[str, Any] = {"failed_logins": user.failed_logins}
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            data["locked_until"] = user.locked_until.isoformat()
        record_event(session, action="login_failed", actor=user.username, actor_id=user.id, data=data)
        session.flush()
        if "locked_until" in data:
            raise LoginError("wrong username or password", locked=True,
                             retry_after=seconds_until(now + LOCKOUT, now))
        raise LoginError("wrong username or password")
    if not totp_required(user):
        # With a second factor to come the count goes on until that code is right (verify_totp):
        # logging in again with the password must not give new guesses at the code.
        user.failed_logins = 0
    user.locked_until = None
    record_event(session, action="logged_in", actor=user.username, actor_id=user.id)
    session.flush()
    return user


# --- second factor (TOTP, RFC 6238) --------------------------------------------------------------

# Leaders sign results and approve on behalf of the People's Committee: a stolen password alone
# must not be enough. Other users may enrol voluntarily.
TOTP_REQUIRED_ROLES = frozenset({"leader"})
TOTP_ISSUER = "motcua"


def totp_required(user: User) -> bool:
    return bool(user.totp_secret) or bool(user.roles & TOTP_REQUIRED_ROLES)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the enrolment QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, *, at: datetime) -> int | None:
    """The 30-second time step the code belongs to (one step of drift either way), or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(at)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def verify_totp(session: Session, user: User, code: str) -> None:
    """Check the second factor of an enrolled user. A code is accepted once (replay refused);
    failures count towards the same lockout as wrong passwords."""
    if not user.totp_secret:
        raise LoginError("second factor not enrolled")
    now = clock.now()
    if user.locked_until is not None and user.locked_until > now:
        raise _locked(user, now)
    step = _matching_step(user.totp_secret, code, at=now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        user.failed_logins += 1
        data: dict[str, Any] = {"failed_logins": user.failed_logins, "factor": "totp"}
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            data["locked_until"] = user.locked_until.isoformat()
        record_event(session, action="login_failed", actor=user.username, actor_id=user.id, data=data)
        session.flush()
        if "locked_until" in data:
            raise LoginError("wrong or already used code", locked=True, retry_after=seconds_until(now + LOCKOUT, now))
        raise LoginError("wrong or already used code")
    user.totp_last_step = step
    user.failed_logins = 0
    record_event(session, action="second_factor_passed", actor=user.username, actor_id=user.id)
    session.flush()


def enrol_totp(session: Session, user: User, secret: str, code: str) -> None:
    """Store a new TOTP secret once the user proves their app produces its codes."""
    step = _matching_step(secret, code, at=clock.now())
    if step is None:
        record_event(session, action="totp_enrolment_failed", actor=user.username, actor_id=user.id)
        session.flush()
        raise LoginError("the code does not match; check the clock of your phone and try again")
    user.totp_secret = secret
    user.totp_last_step = step
    record_event(session, action="totp_enrolled", actor=user.username, actor_id=user.id)
    session.flush()


def reset_totp(session: Session, user: User, *, actor: str) -> None:
    """Forget a user's second factor (lost phone); they enrol again at the next login."""
    user.totp_secret = None
    user.totp_last_step = None
    record_event(session, action="totp_reset", actor=actor, data={"user": user.username})
    session.flush()
