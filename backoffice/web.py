"""A minimal home page: the demo at a glance (the officer UI comes with the back-office issue)."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from backoffice.extensions import db, motcua
from engine import clock
from engine.models import Dossier, DossierStatus, Procedure, Unit, User
from engine.services import calendar_for

bp = Blueprint("web", __name__)

STATUS_VI = {
    DossierStatus.SUBMITTED: "Mới nộp",
    DossierStatus.ACCEPTED: "Đã tiếp nhận",
    DossierStatus.NOT_ACCEPTED: "Từ chối tiếp nhận",
    DossierStatus.PROCESSING: "Đang xử lý",
    DossierStatus.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung",
    DossierStatus.PAYMENT_REQUESTED: "Chờ thanh toán",
    DossierStatus.WITHDRAWAL_REQUESTED: "Xin rút hồ sơ",
    DossierStatus.STOPPED: "Dừng xử lý",
    DossierStatus.PROCESSED: "Đã xử lý xong",
    DossierStatus.RETURNED: "Đã trả kết quả",
}


@bp.get("/")
def home() -> str:
    session = db()
    settings = motcua().settings
    cal = calendar_for(session)
    now = clock.now()
    recent = session.execute(
        select(Dossier, Procedure.name_vi, Unit.name)
        .join(Procedure, Procedure.id == Dossier.procedure_id)
        .join(Unit, Unit.id == Dossier.unit_id)
        .order_by(Dossier.id.desc())
        .limit(20)
    ).all()
    rows = []
    for dossier, procedure_name, unit_name in recent:
        left = None
        if dossier.due_at and not dossier.finished_at and dossier.clock_paused_at is None:
            left = cal.working_days_left(now, dossier.due_at)
        rows.append({"d": dossier, "procedure": procedure_name, "unit": unit_name,
                     "status": STATUS_VI[DossierStatus(dossier.status)], "left": left})
    counts = dict(session.execute(select(Dossier.status, func.count()).group_by(Dossier.status)).all())
    logins = []
    if settings.env != "production":
        logins = session.scalars(select(User).order_by(User.id)).all()
    return render_template("home.html", rows=rows, counts={STATUS_VI[DossierStatus(k)]: v for k, v in counts.items()},
                           logins=logins, units=session.scalars(select(Unit).order_by(Unit.code)).all())
