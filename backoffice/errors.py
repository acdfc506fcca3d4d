"""JSON errors in the API.md shape: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from engine.services import ServiceError


def error_response(status: int, code: str, message: str, fields: dict[str, Any] | None = None) -> ResponseReturnValue:
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}}), status


def service_error(exc: ServiceError) -> ResponseReturnValue:
    return error_response(exc.http_status, exc.code, exc.message, exc.fields)
