"""Public verification of signed documents: ``/verify/<dossier code>`` (the QR code of every
document leads here). Anyone sees whether each signed document of the dossier is intact and who
signed it, and may upload a copy to check it; auditors also see the full validation report.
Nothing personal is shown: no applicant name, no document content."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from backoffice.extensions import db
from backoffice.security import web_user
from engine import paperwork
from engine.models import Dossier, Role

bp = Blueprint("verify", __name__)


def _dossier(code: str) -> Dossier:
    dossier = db().scalar(select(Dossier).where(Dossier.code == code))
    if dossier is None:
        abort(404)
    return dossier


@bp.route("/verify/<code>", methods=["GET", "POST"])
def verify(code: str) -> ResponseReturnValue:
    session = db()
    dossier = _dossier(code)
    user = web_user()
    auditor = bool(user and Role.AUDITOR.value in user.roles)
    rows = [{"document": document, "validation": paperwork.verify_document(session, document)}
            for document in paperwork.signed_documents(session, dossier)]
    checked = None
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        content = upload.read() if upload is not None else b""
        if not content:
            checked = {"error": "no_file"}
            status = 400
        else:
            validation, match = paperwork.verify_upload(session, dossier, content)
            checked = {"name": upload.filename if upload is not None else "", "validation": validation,
                       "match": match}
            status = 200 if validation.ok and match is not None else 422
    return render_template("verify.html", dossier=dossier, rows=rows, checked=checked, auditor=auditor), status
