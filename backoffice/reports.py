"""Reports and the leader's dashboard: the on-time report per procedure or unit, the index
scores, online submissions against each unit's target, the tracking register (Mẫu 06) as a page
and as PDF, and charts drawn on the server as SVG (no script, printable, readable on a phone)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from backoffice.exports import FORMATS, table_file
from backoffice.extensions import db
from backoffice.security import page_login_required, web_actor
from backoffice.views import service_error_page
from engine import clock, documents, paperwork, reports
from engine.calendar import to_vn
from engine.models import Procedure, Role, Unit
from engine.services import Actor, InvalidDataError, ServiceError

bp = Blueprint("reports", __name__)
READERS = (Role.LEADER.value, Role.AUDITOR.value)


bp.register_error_handler(ServiceError, service_error_page)


def scope_for(actor: Actor, args: Mapping[str, str]) -> reports.Scope:
    """The reader's scope, narrowed by the query's ``unit`` and ``procedure``."""
    return reports.reader_scope(db(), actor, unit_code=args.get("unit") or None,
                                procedure_code=args.get("procedure") or None)


def period_for(args: Mapping[str, str]) -> reports.Period:
    return reports.Period.parse(args.get("from"), args.get("to"), today=to_vn(clock.now()).date())


def scope_from_request() -> reports.Scope:
    return scope_for(web_actor(), request.args)


def period_from_request() -> reports.Period:
    return period_for(request.args)


def report_columns(by: str) -> list[tuple[str, str]]:
    head = [("procedure_name", _("Procedure"))] if by == "procedure" else [("unit_name", _("Unit"))]
    return [*head, ("carried_over", _("Carried over")), ("received", _("Newly received")),
            ("received_online", _("online")), ("received_counter", _("at the counter")),
            ("received_post", _("by post")),
            ("finished", _("Finished")), ("early", _("early")), ("on_time", _("on time")), ("late", _("late")),
            ("ontime_rate", _("On-time rate")), ("refused", _("Refusal letters")),
            ("not_accepted", _("Refused at receipt")), ("withdrawn", _("Withdrawn")), ("stopped", _("Stopped")),
            ("processing", _("Still processing")), ("processing_within", _("within the deadline")),
            ("processing_overdue", _("past the deadline")), ("waiting_citizen", _("waiting for the applicant")),
            ("apologies", _("Apologies"))]


def scope_choices() -> dict[str, Any]:
    """The units (the reader's own when bound to one) and procedures the filter forms offer."""
    actor = web_actor()
    units = select(Unit).order_by(Unit.code)
    if actor.unit_id is not None:
        units = units.where(Unit.id == actor.unit_id)
    return {"units": db().scalars(units).all(),
            "procedures": db().scalars(select(Procedure).order_by(Procedure.name_vi)).all()}


@bp.get("/")
@page_login_required(*READERS)
def index() -> ResponseReturnValue:
    session = db()
    scope, period, by = scope_from_request(), period_from_request(), request.args.get("by", "procedure")
    return render_template(
        "reports/index.html", period=period, by=by, args=request.args,
        report=reports.ontime_report(session, period, scope, by=by),
        scores=reports.index_scores(session, period, scope, by=by),
        online=reports.online_rates(session, period, scope), **scope_choices())


@bp.get("/ontime.<fmt>")
@page_login_required(*READERS)
def export(fmt: str) -> ResponseReturnValue:
    if fmt not in FORMATS:
        abort(404)
    scope, period, by = scope_from_request(), period_from_request(), request.args.get("by", "procedure")
    report = reports.ontime_report(db(), period, scope, by=by)
    total = {**report["total"], "procedure_name": _("Total"), "unit_name": _("Total")}
    return table_file([*report["rows"], total], report_columns(by), fmt=fmt,
                      name=f"bao-cao-{period.start.isoformat()}-{period.end.isoformat()}", title=_("On-time report"))


def _register_unit() -> Unit:
    """The register is one unit's book: the asked one, in the reader's scope, or the reader's own."""
    units = scope_from_request().unit_ids
    if not units or len(units) != 1:
        raise InvalidDataError("choose a unit", fields={"unit": ["required"]})
    unit = db().get(Unit, units[0])
    assert unit is not None  # the scope holds existing units
    return unit


def _year_month() -> tuple[int, int | None]:
    """``year`` (default this year) and ``month`` (default: this month on the page; "" for the year)."""
    today = to_vn(clock.now()).date()
    year = request.args.get("year") or str(today.year)
    if not year.isdigit() or not 2000 <= int(year) <= 2100:
        raise InvalidDataError("not a year", fields={"year": ["2000–2100"]})
    month = request.args.get("month", str(today.month) if int(year) == today.year else "")
    if month and (not month.isdigit() or not 1 <= int(month) <= 12):
        raise InvalidDataError("not a month", fields={"month": ["1–12, or empty for the whole year"]})
    return int(year), int(month) if month else None


REGISTER_PAGE_ROWS = 2000  # a year of a busy commune is read month by month
REGISTER_PDF_ROWS = 3000  # WeasyPrint lays out about 100 lines a second


@bp.get("/register")
@page_login_required(*READERS)
def register() -> ResponseReturnValue:
    unit, (year, month) = _register_unit(), _year_month()
    rows = reports.register_rows(db(), unit.id, year, month=month, limit=REGISTER_PAGE_ROWS + 1)
    return render_template("reports/register.html", unit=unit, year=year, month=month,
                           rows=rows[:REGISTER_PAGE_ROWS], truncated=len(rows) > REGISTER_PAGE_ROWS, **scope_choices())


@bp.get("/register.pdf")
@page_login_required(*READERS)
def register_pdf() -> ResponseReturnValue:
    from flask import Response

    unit, (year, month) = _register_unit(), _year_month()
    rows = reports.register_rows(db(), unit.id, year, month=month, limit=REGISTER_PDF_ROWS + 1)
    if len(rows) > REGISTER_PDF_ROWS:
        raise InvalidDataError(f"more than {REGISTER_PDF_ROWS} lines: print the register month by month",
                               fields={"month": ["choose a month"]})
    context = {"unit": paperwork.unit_context(unit), "year": year, "issued_at": to_vn(clock.now()), "rows": rows,
               "book": f"tháng {month:02d}" if month else None}
    pdf = documents.render_pdf("register", context)
    name = f"so-theo-doi-{unit.code}-{year}" + (f"-{month:02d}" if month else "")
    return Response(pdf, mimetype="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})


@bp.get("/dashboard")
@page_login_required(*READERS)
def dashboard() -> ResponseReturnValue:
    board = reports.dashboard(db(), scope_from_request())
    return render_template("reports/dashboard.html", board=board, today=date.today(), args=request.args,
                           trend_chart=line_chart(board.trend), overdue_chart=bar_chart(
                               [(r["step"], r["overdue"]) for r in board.overdue], color="#b3261e"),
                           workload_chart=stacked_bars(board.workload), **scope_choices())


# --- charts (SVG) ---------------------------------------------------------------------------------

def line_chart(points: list[dict[str, Any]], *, width: int = 640, height: int = 220) -> dict[str, Any]:
    """The on-time rate per month as a polyline over a 0–100 % grid; months without finished
    dossiers leave a gap. Returns what the template draws (coordinates in the viewBox)."""
    left, right, top, bottom = 40, 10, 10, 30
    inner_w, inner_h = width - left - right, height - top - bottom
    step = inner_w / max(1, len(points) - 1)
    segments: list[list[tuple[float, float]]] = [[]]
    dots = []
    for index, point in enumerate(points):
        x = left + index * step
        if point["rate"] is None:
            if segments[-1]:
                segments.append([])
            continue
        y = top + inner_h * (1 - point["rate"])
        segments[-1].append((round(x, 1), round(y, 1)))
        dots.append({"x": round(x, 1), "y": round(y, 1), "label": f"{point['month']}: {point['rate'] * 100:.1f}% "
                     f"({point['ontime']}/{point['finished']})"})
    grid = [{"y": round(top + inner_h * (1 - f), 1), "label": f"{int(f * 100)}%"} for f in (0, 0.25, 0.5, 0.75, 1)]
    ticks = [{"x": round(left + i * step, 1), "label": p["month"][5:] + "/" + p["month"][2:4]}
             for i, p in enumerate(points)]
    return {"width": width, "height": height, "lines": [" ".join(f"{x},{y}" for x, y in s) for s in segments if s],
            "dots": dots, "grid": grid, "ticks": ticks, "left": left, "right": width - right, "base": top + inner_h}


def bar_chart(items: list[tuple[str, int]], *, width: int = 640, color: str = "#1f5fbf") -> dict[str, Any]:
    """Horizontal bars with their labels and values."""
    row, label_w = 26, 250
    peak = max((v for _, v in items), default=0) or 1
    bars = [{"y": i * row, "label": label, "value": value,
             "w": round((width - label_w - 50) * value / peak, 1)} for i, (label, value) in enumerate(items)]
    return {"width": width, "height": max(row, row * len(items)), "bars": bars, "x0": label_w, "color": color}


def stacked_bars(rows: list[dict[str, Any]], *, width: int = 640) -> dict[str, Any]:
    """Per officer: open tasks (overdue part in red) and tasks done in the last 30 days."""
    row, label_w = 30, 200
    peak = max((max(r["open"], r["done"]) for r in rows), default=0) or 1
    scale = (width - label_w - 60) / peak
    bars = [{"y": i * row, "label": r["officer"], "open": r["open"], "overdue": r["overdue"], "done": r["done"],
             "open_w": round(r["open"] * scale, 1), "overdue_w": round(r["overdue"] * scale, 1),
             "done_w": round(r["done"] * scale, 1)} for i, r in enumerate(rows[:15])]
    return {"width": width, "height": max(row, row * len(bars)), "bars": bars, "x0": label_w}
