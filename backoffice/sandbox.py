"""Provider sandboxes mounted under /sandbox (never in production): what they received."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from backoffice.extensions import db
from connectors import sandbox

bp = Blueprint("sandbox", __name__)


@bp.get("/sms/messages")
def sms_messages() -> ResponseReturnValue:
    rows = sandbox.records(db(), provider="sms", recipient=request.args.get("to"))
    return jsonify([{"to": r.recipient, "text": r.payload.get("text"), "at": r.created_at.isoformat(),
                     "attempts": r.attempts} for r in rows])
