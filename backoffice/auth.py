"""API authentication: signed bearer tokens for the HTTP API (API.md).

A token carries the user id and a fingerprint of the password hash, so changing the password
revokes every token. Tokens expire after TOKEN_MAX_AGE.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from backoffice.errors import error_response
from backoffice.extensions import db
from engine.models import User
from engine.services import Actor

TOKEN_MAX_AGE = 12 * 3600
F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="motcua-api-token")


def issue_token(user: User) -> str:
    return _serializer().dumps({"uid": user.id, "pw": user.password_hash[-16:]})


def current_actor() -> Actor | None:
    """The caller of this request, from ``Authorization: Bearer <token>``; None when absent or bad."""
    if "actor" in g:
        return g.actor  # type: ignore[no-any-return]
    actor = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        try:
            claims: dict[str, Any] = _serializer().loads(header[7:].strip(), max_age=TOKEN_MAX_AGE)
        except (BadSignature, SignatureExpired):
            claims = {}
        user = db().get(User, claims.get("uid")) if claims.get("uid") else None
        if user is not None and user.is_active and user.password_hash[-16:] == claims.get("pw"):
            actor = Actor.of(user)
    g.actor = actor
    return actor


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if current_actor() is None:
            return error_response(401, "unauthorized", "log in first: Authorization: Bearer <token>")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
