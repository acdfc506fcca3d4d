"""Official documents as PDF: the one-stop forms (Circular 01/2018/TT-VPCP Mẫu 01–06, and the 2025
set as a second, selectable version) and each procedure's result document.

Templates are Jinja2 HTML under ``engine/document_templates`` (``<form set>/<kind>.html`` for the
forms, ``result/<procedure code>.html`` for results, ``_base.html`` for the national heading and
the page), rendered to PDF by WeasyPrint with embedded fonts (Liberation Serif — metric-compatible
with Times New Roman, which administrative documents use — or DejaVu Serif; both carry every
Vietnamese diacritic). Every document carries a QR code to its public verification page.
Templates never query the database: :func:`render_pdf` gets everything in its context.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
import qrcode
import qrcode.image.svg

from engine.calendar import to_vn

TEMPLATES = Path(__file__).resolve().parent / "document_templates"
FORM_SETS = ("2018", "2025")
DEFAULT_FORM_SET = "2018"


@dataclass(frozen=True)
class FormKind:
    """A one-stop form: its template key, its number in each form set and its paper size."""

    key: str
    title: str
    numbers: Mapping[str, str]  # form set → "Mẫu số 01" …; absent: not in that set
    page: str = "A4"


FORMS: dict[str, FormKind] = {kind.key: kind for kind in (
    FormKind("receipt", "Giấy tiếp nhận hồ sơ và hẹn trả kết quả", {"2018": "01", "2025": "01"}),
    FormKind("supplement", "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ", {"2018": "02", "2025": "02"}),
    FormKind("refusal", "Phiếu từ chối tiếp nhận giải quyết hồ sơ", {"2018": "03", "2025": "03"}),
    FormKind("apology", "Phiếu xin lỗi và hẹn lại ngày trả kết quả", {"2018": "04", "2025": "04"}),
    FormKind("control_sheet", "Phiếu kiểm soát quá trình giải quyết hồ sơ", {"2018": "05", "2025": "06"}),
    FormKind("register", "Sổ theo dõi hồ sơ", {"2018": "06", "2025": "07"}, page="A4 landscape"),
    FormKind("stop_notice", "Thông báo dừng giải quyết hồ sơ", {"2025": "05"}),
)}


class DocumentError(ValueError):
    """A document that cannot be made: unknown kind, form set or procedure template."""


def forms_of(form_set: str) -> list[FormKind]:
    if form_set not in FORM_SETS:
        raise DocumentError(f"unknown form set {form_set!r} ({', '.join(FORM_SETS)})")
    return [kind for kind in FORMS.values() if form_set in kind.numbers]


def result_procedures() -> list[str]:
    """Procedure codes with a result document template."""
    return sorted(p.stem for p in (TEMPLATES / "result").glob("*.html") if not p.stem.startswith("_"))


# --- formatting -------------------------------------------------------------------------------


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return to_vn(value) if isinstance(value, datetime) else value


def vn_date(value: Any) -> str:
    """dd/mm/yyyy."""
    moment = _moment(value)
    return moment.strftime("%d/%m/%Y") if isinstance(moment, date) else "…/…/……"


def vn_long_date(value: Any) -> str:
    """"ngày 19 tháng 11 năm 2026" (the dateline of administrative documents)."""
    moment = _moment(value)
    if not isinstance(moment, date):
        return "ngày … tháng … năm ……"
    return f"ngày {moment.day:02d} tháng {moment.month:02d} năm {moment.year}"


def vn_datetime(value: Any) -> str:
    """"10 giờ 05 phút, ngày 19 tháng 11 năm 2026"."""
    moment = _moment(value)
    if not isinstance(moment, datetime):
        return "… giờ … phút, " + vn_long_date(None)
    return f"{moment.hour:02d} giờ {moment.minute:02d} phút, {vn_long_date(moment)}"


def vnd(value: Any) -> str:
    """1.000.000 đồng (dots group thousands)."""
    try:
        amount = int(value or 0)
    except (TypeError, ValueError):
        return str(value)
    return f"{amount:,}".replace(",", ".") + " đồng"


def qr_data_uri(url: str) -> str:
    """A QR code of ``url`` as an SVG data URI (drawn in the PDF as vectors)."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=1)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(vn_date=vn_date, vn_long_date=vn_long_date, vn_datetime=vn_datetime, vnd=vnd)
    return env


# --- rendering --------------------------------------------------------------------------------


def template_for(kind: str, *, form_set: str = DEFAULT_FORM_SET, procedure: str | None = None) -> str:
    if kind == "result":
        if not procedure or procedure not in result_procedures():
            raise DocumentError(f"no result document template for procedure {procedure!r}")
        return f"result/{procedure}.html"
    form = FORMS.get(kind)
    if form is None or form_set not in form.numbers:
        raise DocumentError(f"form {kind!r} is not in the {form_set} form set")
    return f"{form_set}/{kind}.html"


def render_html(kind: str, context: Mapping[str, Any], *, form_set: str = DEFAULT_FORM_SET,
                procedure: str | None = None) -> str:
    name = template_for(kind, form_set=form_set, procedure=procedure)
    form = FORMS.get(kind)
    values = {"form_set": form_set, "kind": kind,
              "form_number": form.numbers.get(form_set) if form else None,
              "form_title": form.title if form else None, "page": form.page if form else "A4", **context}
    if values.get("verify_url") and not values.get("qr"):
        values["qr"] = qr_data_uri(str(values["verify_url"]))
    return _environment().get_template(name).render(**values)


def render_pdf(kind: str, context: Mapping[str, Any], *, form_set: str = DEFAULT_FORM_SET,
               procedure: str | None = None) -> bytes:
    """The document as PDF bytes (fonts embedded, subset)."""
    from weasyprint import HTML  # imported late: Pango is loaded only when a document is made

    html = render_html(kind, context, form_set=form_set, procedure=procedure)
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    return pdf


SLOT_ID = "signature-slot"
PX_TO_PT = 0.75  # CSS px (1/96 in) to PDF points (1/72 in)


def _find_box(box: Any, element_id: str) -> Any:
    element = getattr(box, "element", None)
    if element is not None and element.get("id") == element_id and getattr(box, "element_tag", None):
        return box
    for child in getattr(box, "children", []) or []:
        found = _find_box(child, element_id)
        if found is not None:
            return found
    return None


def render_pdf_with_slot(kind: str, context: Mapping[str, Any], *, form_set: str = DEFAULT_FORM_SET,
                         procedure: str | None = None) -> tuple[bytes, Any]:
    """The PDF and where its ``#signature-slot`` element was laid out, as a signing.SignatureBox
    (page index, box in PDF points from the bottom left); None when the template has no slot."""
    from weasyprint import HTML

    from engine.signing import SignatureBox

    html = render_html(kind, context, form_set=form_set, procedure=procedure)
    document = HTML(string=html, base_url=str(TEMPLATES)).render()
    slot = None
    for index, page in enumerate(document.pages):
        box = _find_box(page._page_box, SLOT_ID)
        if box is not None:
            height_pt = page.height * PX_TO_PT
            left, top = box.border_box_x(), box.border_box_y()
            width, height = box.border_width(), box.border_height()
            slot = SignatureBox(index, (round(left * PX_TO_PT), round(height_pt - (top + height) * PX_TO_PT),
                                        round((left + width) * PX_TO_PT), round(height_pt - top * PX_TO_PT)))
            break
    pdf: bytes = document.write_pdf()
    return pdf, slot
