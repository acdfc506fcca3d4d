"""The HTTP API (JSON). This issue's part: units, procedures, health; the rest comes with the back office."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select, text

from backoffice.errors import error_response, service_error
from backoffice.extensions import db
from engine.models import Procedure, Unit
from engine.services import ServiceError

bp = Blueprint("api", __name__)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> ResponseReturnValue:
    return service_error(exc)


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> ResponseReturnValue:
    return error_response(404, "not_found", "no such resource")


@bp.get("/health")
def health() -> ResponseReturnValue:
    db().execute(text("SELECT 1"))
    return jsonify({"ok": True})


@bp.get("/units")
def units() -> ResponseReturnValue:
    rows = db().scalars(select(Unit).order_by(Unit.code)).all()
    return jsonify([{"code": u.code, "name": u.name, "agency_code": u.agency_code} for u in rows])


@bp.get("/procedures")
def procedures() -> ResponseReturnValue:
    rows = db().scalars(select(Procedure).where(Procedure.is_active).order_by(Procedure.code)).all()
    return jsonify([
        {
            "code": p.code,
            "national_code": p.national_code,
            "name": p.name_vi,
            "name_en": p.name_en,
            "field": p.field,
            "online_level": p.online_level,
            "legal_time": {"value": p.legal_time_value, "unit": p.legal_time_unit},
            "fee": p.catalogue.get("fee"),
            "documents": p.catalogue.get("documents", []),
            "form_schema": p.catalogue.get("form_schema", {}),
            "delivery": p.catalogue.get("delivery", []),
        }
        for p in rows
    ])
