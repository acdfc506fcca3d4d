"""Test mode endpoints (MOTCUA_ENV=test only): move the clock, drain due work."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from backoffice.errors import error_response
from backoffice.extensions import motcua
from engine import clock, jobs
from engine.calendar import parse_iso

bp = Blueprint("testmode", __name__)


@bp.post("/clock")
def set_clock() -> ResponseReturnValue:
    body = request.get_json(silent=True) or {}
    try:
        moment = parse_iso(str(body["now"]))
    except (KeyError, ValueError):
        return error_response(400, "invalid", "now must be an ISO 8601 moment", {"now": ["ISO 8601 required"]})
    clock.set_now(moment)
    jobs.share_clock_offset(motcua().factory)  # Celery workers in test mode follow it
    return jsonify({"now": clock.now().isoformat()})


@bp.post("/drain")
def drain() -> ResponseReturnValue:
    ext = motcua()
    return jsonify(jobs.drain(ext.factory, ext.registry, lease=ext.lease))
