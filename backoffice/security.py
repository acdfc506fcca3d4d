"""Browser sessions for the back office: who is logged in, CSRF tokens, security headers.

The HTTP API authenticates with bearer tokens (backoffice.auth) and is not exposed to CSRF; pages
use a session cookie, so every state-changing form carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from backoffice.extensions import db, motcua
from engine.models import User
from engine.services import Actor

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])
SESSION_LIFETIME = timedelta(hours=8)  # one working day
# Paths whose POSTs are not made by our pages: the bearer-token API, provider callbacks and
# sandboxes, and Flask-Admin (its forms carry their own CSRF field, see backoffice.admin).
CSRF_EXEMPT_PREFIXES = ("/api/", "/sandbox/", "/admin/")
# bpmn-js draws SVG with inline style attributes, hence 'unsafe-inline' for styles only; our pages
# have no inline script (tests/unit/test_security.py checks the templates).
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")
# Flask-Admin's templates use inline event handlers (confirm before delete, filters): scripts may be
# inline there, but still only from this site, and the rest of the policy holds.
ADMIN_CSP = PAGE_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")


def _fingerprint(user: User) -> str:
    # Changing the password ends every session of the user.
    return user.password_hash[-16:]


def start_session(user: User) -> None:
    """Log a fully authenticated user in, in a fresh session (no fixation)."""
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["pw"] = _fingerprint(user)
    session["csrf"] = secrets.token_urlsafe(32)
    if lang:
        session["lang"] = lang


def start_pending(user: User) -> None:
    """Password checked; the second factor is still to come."""
    lang = session.get("lang")
    session.clear()
    session["pending_uid"] = user.id
    session["pending_pw"] = _fingerprint(user)
    session["csrf"] = secrets.token_urlsafe(32)
    if lang:
        session["lang"] = lang


def pending_user() -> User | None:
    uid = session.get("pending_uid")
    user = db().get(User, uid) if uid else None
    if user is None or not user.is_active or _fingerprint(user) != session.get("pending_pw"):
        return None
    return user


def end_session() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def web_user() -> User | None:
    """The user logged in through the pages, or None."""
    if "web_user" in g:
        return g.web_user  # type: ignore[no-any-return]
    uid = session.get("uid")
    user = db().get(User, uid) if uid else None
    if user is not None and (not user.is_active or _fingerprint(user) != session.get("pw")):
        user = None
    g.web_user = user
    return user


def web_actor() -> Actor:
    user = web_user()
    if user is None:
        abort(401)
    return Actor.of(user)


def page_login_required(*roles: str, login: str = "views.login") -> Callable[[F], F]:
    """Pages for logged-in users having one of ``roles`` (any role when none are given); others
    are sent to the ``login`` page."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            user = web_user()
            if user is None:
                return redirect(url_for(login, next=request.full_path.rstrip("?")))
            if roles and not (user.roles & set(roles)):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    if request.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="csrf")


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy",
                       ADMIN_CSP if request.path.startswith("/admin/") else PAGE_CSP)
    if motcua().settings.env == "production":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_security(app: Flask) -> None:
    production = motcua(app).settings.env == "production"
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        SESSION_COOKIE_NAME="motcua_session",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = web_user
