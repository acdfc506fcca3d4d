"""Accounts: checking a login with lockout after repeated failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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

    def __init__(self, message: str, *, locked: bool = False):
        super().__init__(message)
        self.message = message
        self.locked = locked


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
        raise LoginError("account locked after repeated failures; try again later", locked=True)
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        data: dict[str, Any] = {"failed_logins": user.failed_logins}
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            data["locked_until"] = user.locked_until.isoformat()
        record_event(session, action="login_failed", actor=user.username, actor_id=user.id, data=data)
        session.flush()
        raise LoginError("wrong username or password", locked="locked_until" in data)
    user.failed_logins = 0
    user.locked_until = None
    record_event(session, action="logged_in", actor=user.username, actor_id=user.id)
    session.flush()
    return user
