"""JSON errors in the API.md shape: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

from typing import Any

from flask import jsonify, make_response
from flask.typing import ResponseReturnValue

from engine.services import ServiceError


def error_response(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> ResponseReturnValue:
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}}), status


def service_error(exc: ServiceError) -> ResponseReturnValue:
    return retry_after(error_response(exc.http_status, exc.code, exc.message, exc.fields),
                       getattr(exc, "retry_after", None))


def retry_after(answer: ResponseReturnValue, seconds: int | None) -> ResponseReturnValue:
    """``answer`` with a Retry-After header when a limit says how long to wait (RFC 9110 10.2.3)."""
    if seconds is None:
        return answer
    response = make_response(answer)
    response.headers["Retry-After"] = str(int(seconds))
    return response
