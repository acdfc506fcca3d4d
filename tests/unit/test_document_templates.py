"""Every one-stop form of both form sets and every procedure's result document renders to a PDF whose
text reads back with its Vietnamese diacritics: the national heading, the form number, the title,
the applicant. Pages are A4 (the register landscape), documents a leader signs carry the empty
signature slot the PAdES stamp is placed on, and each first page is saved as a PNG under
test-artifacts/documents/ for a look by eye.
"""

from __future__ import annotations

import functools
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import yaml
from pypdf import PdfReader

from engine import documents

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
ARTIFACTS = ROOT / "test-artifacts" / "documents"
PROCEDURES = sorted(path.parent.name for path in PROCESSES.glob("*/procedure.yaml"))

A4 = (595, 842)
HEADING = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc")

# Names as the circulars print them. 2025: Circular 03/2025/TT-VPCP, Phụ lục I.
FORM_TITLES = {
    "receipt": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả",
    "supplement": "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ",
    "refusal": "Phiếu từ chối tiếp nhận giải quyết hồ sơ",
    "apology": "Phiếu xin lỗi và hẹn lại ngày trả kết quả",
    "control_sheet": "Phiếu kiểm soát quá trình giải quyết hồ sơ",
    "register": "Sổ theo dõi hồ sơ",
}
FORM_TITLES_2025 = {**FORM_TITLES, "apology": "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết",
                    "stop_notice": "Thông báo dừng giải quyết hồ sơ"}
CIRCULAR_03_2025_NUMBERS = {"receipt": "01", "supplement": "02", "refusal": "03", "apology": "04",
                            "stop_notice": "05", "control_sheet": "06", "register": "07"}
LEADER_SIGNED_FORMS = {"apology", "stop_notice"}

# What each result document must say: its title (and subject), and words only it prints.
RESULT_TEXT = {
    "birth_registration": ("Giấy khai sinh", "Người ký Giấy khai sinh", "Nguyễn Minh An",
                           "ngày hai tháng mười một năm hai nghìn không trăm hai mươi sáu", "042226000123"),
    "civil_status_change_correction": ("Trích lục cải chính hộ tịch", "Thông tin sau khi cải chính", "13/05/2012"),
    "civil_status_extract_copy": ("Trích lục khai sinh", "(Bản sao)", "Cơ sở dữ liệu hộ tịch điện tử"),
    "copy_certification": ("Chứng thực bản sao đúng với bản chính", "Người thực hiện chứng thực",
                           "Bằng tốt nghiệp trung học phổ thông", "120/2026/SCT/BS"),
    "death_registration": ("Trích lục khai tử", "Nguyễn Văn Hùng", "Nơi cư trú cuối cùng", "Giấy báo tử"),
    "funeral_cost_support": ("Quyết định", "Về việc hỗ trợ chi phí mai táng", "Nguyễn Thị Lan",
                             "10.000.000 đồng", "Nghị định số 20/2021/NĐ-CP"),
    "guardianship_registration": ("Trích lục đăng ký giám hộ", "Lê Minh An", "Giám hộ đương nhiên"),
    "linked_birth_residence_health_insurance": ("Giấy khai sinh", "Thẻ bảo hiểm y tế số", "TE1424220000123",
                                                "Trạm Y tế xã An Hòa Thịnh"),
    "marital_status_confirmation": ("Giấy xác nhận tình trạng hôn nhân", "Hiện tại chưa đăng ký kết hôn với ai",
                                    "06 tháng", "Lê Văn Bình"),
    "marriage_registration": ("Giấy chứng nhận kết hôn", "Lê Văn Bình", "Thông tin về vợ", "15/2026"),
    "monthly_social_allowance": ("Quyết định", "Về việc trợ cấp xã hội hằng tháng", "Lê Thị Mai",
                                 "750.000 đồng", "kể từ tháng 12 năm 2026"),
    "paternity_maternity_recognition": ("Trích lục đăng ký nhận cha, mẹ, con", "Cha nhận con", "Nguyễn Minh An"),
    "poor_household_recognition": ("Quyết định", "Về việc công nhận hộ nghèo phát sinh năm 2026",
                                   "Trần Văn Hùng", "1.200.000 đồng/người/tháng", "Chất lượng nhà ở"),
}
DECISIONS = {"funeral_cost_support", "monthly_social_allowance", "poor_household_recognition"}
APPLICANTS = {"paternity_maternity_recognition": ("Nguyễn Văn Bình", "001098000222")}


# --- a realistic sample context ---------------------------------------------------------------


@functools.cache
def _procedure(code: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROCESSES / code / "procedure.yaml").read_text(encoding="utf-8"))
    return data


def _work_fields(code: str) -> dict[str, Any]:
    """What the procedure's example work put into the case (task data and agency answers)."""
    fields: dict[str, Any] = {}
    for step in _procedure(code).get("example", {}).get("work", []):
        fields.update(step.get("data") or step.get("payload") or {})
    fields.pop("decision", None)
    return fields


def sample_context(kind: str, *, procedure: str = "marital_status_confirmation") -> dict[str, Any]:
    """What the engine hands a template: a commune of Hà Tĩnh, a dossier of ``procedure`` with the
    procedure's example form, its officer and leader, and what ``kind`` needs besides."""
    entry = _procedure(procedure)
    applicant, applicant_id = APPLICANTS.get(procedure, ("Phạm Thị Dung", "001199000111"))
    form = dict(entry["example"]["form"])
    if procedure in ("birth_registration", "linked_birth_residence_health_insurance"):
        form.update(ethnicity="Kinh", nationality="Việt Nam")
    code = "000.00.31.H26-261119-0007"
    context: dict[str, Any] = {
        "unit": {"name": "UBND xã An Hòa Thịnh", "parent": "Ủy ban nhân dân tỉnh Hà Tĩnh", "place": "An Hòa Thịnh",
                 "department": "Bộ phận Một cửa", "phone": "0239 3856 123"},
        "issued_at": "2026-11-19T10:05:00+07:00",
        "number": None,
        "verify_url": f"https://motcua.hatinh.gov.vn/tra-cuu/{code}",
        "dossier": {
            "code": code, "procedure_code": procedure, "procedure_name": entry["name_vi"],
            "national_code": entry.get("national_code"), "applicant_name": applicant,
            "applicant_id_number": applicant_id,
            "applicant_address": "Số 5, thôn Đông, xã An Hòa Thịnh, tỉnh Hà Tĩnh",
            "applicant_phone": "0912 345 678", "applicant_email": "dung.pt@example.vn",
            "received_at": "2026-11-19T09:30:00+07:00", "due_at": "2026-11-24T17:00:00+07:00",
            "finished_at": None, "legal_time": "03 ngày làm việc",
            "documents": [{"name": name, "form": "Bản chính", "count": 1} for name in entry["documents"][:3]],
            "delivery_text": "Nhận trực tiếp tại Bộ phận Một cửa", "channel": "online", "form": form,
            "status": "processing",
        },
        "officer": {"name": "Nguyễn Văn Bình", "title": "Công chức Tư pháp – Hộ tịch"},
        "leader": {"name": "Hoàng Đức Thịnh", "title": "Chủ tịch UBND xã"},
    }
    context.update(_kind_extras(kind, procedure))
    return context


def _kind_extras(kind: str, procedure: str) -> dict[str, Any]:
    if kind == "supplement":
        return {"items": ["Bản sao Giấy chứng nhận kết hôn trước đây và bản án ly hôn đã có hiệu lực",
                          "Ghi đầy đủ nơi cư trú trước khi chuyển đến xã An Hòa Thịnh trong Tờ khai"],
                "reason": "Hồ sơ chưa đủ thành phần theo quy định của thủ tục",
                "supplement_due": "2026-11-26T17:00:00+07:00"}
    if kind == "refusal":
        return {"reasons": ["Người yêu cầu không cư trú trên địa bàn xã An Hòa Thịnh",
                            "Yêu cầu không thuộc thẩm quyền giải quyết của Ủy ban nhân dân xã"],
                "basis": "Điều 21 Nghị định số 123/2015/NĐ-CP"}
    if kind == "apology":
        return {"reason": "Cần xác minh tình trạng hôn nhân tại nơi cư trú trước đây của người yêu cầu",
                "original_due_at": "2026-11-24T17:00:00+07:00", "new_due_at": "2026-12-01T17:00:00+07:00"}
    if kind == "stop_notice":
        return {"reason": "Người yêu cầu có đơn đề nghị dừng giải quyết hồ sơ ngày 20/11/2026",
                "stopped_at": "2026-11-20T14:00:00+07:00"}
    if kind == "control_sheet":
        return {"coordinating": "Công an xã An Hòa Thịnh", "rows": [
            {"step": "Tiếp nhận, chuyển xử lý", "from_name": "Bộ phận Một cửa (Nguyễn Văn Bình)",
             "to_name": "Công chức Tư pháp – Hộ tịch (Lê Thị Hoa)", "handed_at": "2026-11-19T09:45:00+07:00",
             "due_at": "2026-11-19T17:00:00+07:00", "result": "Trước hạn", "note": ""},
            {"step": "Thẩm định, trình ký", "from_name": "Công chức Tư pháp – Hộ tịch (Lê Thị Hoa)",
             "to_name": "Chủ tịch UBND xã (Hoàng Đức Thịnh)", "handed_at": "2026-11-23T15:20:00+07:00",
             "due_at": "2026-11-23T17:00:00+07:00", "result": "Đúng hạn", "note": ""},
            {"step": "Ký duyệt, trả kết quả", "from_name": "Chủ tịch UBND xã (Hoàng Đức Thịnh)",
             "to_name": "Bộ phận Một cửa (Nguyễn Văn Bình)", "handed_at": "2026-11-25T08:10:00+07:00",
             "due_at": "2026-11-24T17:00:00+07:00", "result": "Quá hạn", "note": "Đã có văn bản xin lỗi"},
        ]}
    if kind == "register":
        names = ["Phạm Thị Dung", "Nguyễn Văn Bình", "Trần Văn Hùng", "Lê Thị Mai", "Hoàng Thị Thủy"]
        procedures = ["Cấp Giấy xác nhận tình trạng hôn nhân", "Đăng ký khai sinh", "Chứng thực bản sao từ bản chính",
                      "Thực hiện trợ cấp xã hội hằng tháng", "Đăng ký khai tử"]
        results = ["Trước hạn", "Đúng hạn", "Quá hạn", "", "Đúng hạn"]
        return {"year": 2026, "book": "01/2026", "rows": [
            {"sequence": index + 1, "code": f"000.00.31.H26-2611{19 + index // 3}-{index + 1:04d}",
             "applicant_name": name, "procedure_name": procedures[index],
             "received_at": f"2026-11-{19 + index // 3}T09:{10 + index:02d}:00+07:00",
             "due_at": f"2026-11-{24 + index // 3}T17:00:00+07:00", "handed_to": "Công chức Tư pháp – Hộ tịch",
             "finished_at": f"2026-11-{23 + index // 3}T16:00:00+07:00" if results[index] else None,
             "returned_at": f"2026-11-{24 + index // 3}T09:00:00+07:00" if results[index] else None,
             "result": results[index], "note": "Nộp trực tuyến" if index % 2 else ""}
            for index, name in enumerate(names)]}
    if kind == "result":
        fields = _work_fields(procedure)
        extra = {"copy_certification": {"fee_vnd": 4000},
                 "civil_status_extract_copy": {"entries": [
                     {"label": "Ngày, tháng, năm sinh", "value": "02/07/1999"},
                     {"label": "Nơi sinh", "value": "Trạm y tế xã An Hòa Thịnh, Hà Tĩnh"}]}}
        fields.update(extra.get(procedure, {}))
        return {"result": {"number": "125/QĐ-UBND" if procedure in DECISIONS else fields.get("register_number", "125"),
                           "book": "01/2026", "page": 15, "decided_at": "2026-11-24T15:00:00+07:00",
                           "fields": fields}}
    return {}


# --- rendering once, reading back -------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    html: str
    pdf: bytes
    text: str  # NFC, whitespace collapsed
    sizes: tuple[tuple[int, int], ...]  # (width, height) of every page, in points


def _read(pdf: bytes) -> tuple[str, tuple[tuple[int, int], ...]]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text))
    sizes = tuple((round(float(page.mediabox.width)), round(float(page.mediabox.height))) for page in reader.pages)
    return text, sizes


@functools.cache
def render(group: str, name: str) -> Rendered:
    """A form (group = form set) or a result document (group = "result") rendered once per run;
    its first page saved as test-artifacts/documents/<group>-<name>.png."""
    if group == "result":
        context, args = sample_context("result", procedure=name), {"procedure": name}
        kind = "result"
    else:
        context, args, kind = sample_context(name), {"form_set": group}, name
    html = documents.render_html(kind, context, **args)
    pdf = documents.render_pdf(kind, context, **args)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document = pdfium.PdfDocument(pdf)
    try:
        document[0].render(scale=1.4).to_pil().save(ARTIFACTS / f"{group}-{name}.png")
    finally:
        document.close()
    text, sizes = _read(pdf)
    return Rendered(html, pdf, text, sizes)


def _near(size: tuple[int, int], expected: tuple[int, int]) -> bool:
    """A page size within a point of the expected one (A4 is 595.28 × 841.89 pt)."""
    return abs(size[0] - expected[0]) <= 1 and abs(size[1] - expected[1]) <= 1


def _contains(text: str, needle: str) -> bool:
    """Case-insensitive (titles are set in capitals by CSS) but diacritic-exact."""
    return unicodedata.normalize("NFC", needle).casefold() in text.casefold()


FORM_CASES = [pytest.param(form_set, kind.key, id=f"{form_set}-{kind.key}")
              for form_set in documents.FORM_SETS for kind in documents.forms_of(form_set)]


# --- the forms --------------------------------------------------------------------------------


@pytest.mark.parametrize(("form_set", "kind"), FORM_CASES)
def test_form_renders_with_its_wording(form_set: str, kind: str) -> None:
    doc = render(form_set, kind)
    text = doc.text
    context = sample_context(kind)
    title = (FORM_TITLES_2025 if form_set == "2025" else FORM_TITLES)[kind]
    assert _contains(text, title), f"title {title!r} missing from: {text[:400]}"
    assert f"Mẫu số {documents.FORMS[kind].numbers[form_set]}" in text
    for line in HEADING:
        assert line in text
    # diacritics survive the round trip through the PDF (exact, mixed case)
    for word in ("Hạnh phúc", "hồ sơ", "An Hòa Thịnh", "Độc lập"):
        assert word in text, word
    assert _contains(text, "Ủy ban nhân dân")
    if kind == "register":
        assert all(row["applicant_name"] in text for row in context["rows"])
        assert all(result in text for result in ("Trước hạn", "Đúng hạn", "Quá hạn"))
    else:
        assert context["dossier"]["applicant_name"] in text
        assert context["dossier"]["code"] in text
    if kind == "control_sheet":
        assert all(result in text for result in ("Trước hạn", "Đúng hạn", "Quá hạn"))
        assert all(label in text for label in ("Người giao", "Người nhận", "Cơ quan phối hợp giải quyết hồ sơ"))
    if kind == "supplement":
        assert all(item in text for item in [*context["items"], context["reason"]])
    if kind == "refusal":
        assert all(reason in text for reason in context["reasons"])
    if kind in ("apology", "stop_notice"):
        assert all(part in text for part in (context["reason"], context["leader"]["name"], "Kính gửi"))
    if kind == "apology":
        assert "17 giờ 00 phút, ngày 01 tháng 12 năm 2026" in text  # the new date
    expected = (A4[1], A4[0]) if documents.FORMS[kind].page == "A4 landscape" else A4
    assert all(_near(size, expected) for size in doc.sizes), doc.sizes
    assert len(doc.sizes) == 1, f"{form_set}/{kind} runs over one page: {len(doc.sizes)}"
    slots = doc.html.count('id="signature-slot"')
    assert slots == (1 if kind in LEADER_SIGNED_FORMS else 0)


MINIMAL = {"unit": {"name": "UBND xã An Hòa Thịnh"}, "issued_at": "2026-11-19T10:05:00+07:00",
           "dossier": {"code": "000.00.31.H26-261119-0008", "applicant_name": "Nguyễn Văn Bình"}}


@pytest.mark.parametrize(("form_set", "kind"), FORM_CASES)
def test_form_reads_well_without_optional_data(form_set: str, kind: str) -> None:
    """Only the dossier's code and applicant: the form still renders, with "……" to fill in by hand."""
    html = documents.render_html(kind, MINIMAL, form_set=form_set)
    assert "……" in html
    assert not re.search(r"None|Undefined|\[\]|\{\}", html)


@pytest.mark.parametrize("code", PROCEDURES)
def test_result_reads_well_without_optional_data(code: str) -> None:
    """No form, no result fields, no leader yet: placeholders, the signature slot still there."""
    html = documents.render_html("result", MINIMAL, procedure=code)
    assert "……" in html
    assert html.count('id="signature-slot"') == 1
    assert not re.search(r"None|Undefined|\[\]|\{\}", html)


def test_2025_numbers_follow_circular_03_2025() -> None:
    numbers = {kind.key: kind.numbers["2025"] for kind in documents.forms_of("2025")}
    assert numbers == CIRCULAR_03_2025_NUMBERS


@pytest.mark.parametrize("form_set", documents.FORM_SETS)
def test_refusal_signed_by_the_leader_has_the_slot(form_set: str) -> None:
    """The written refusal after appraisal is Mẫu 03 signed digitally by the leader."""
    context = {**sample_context("refusal"), "signed_by_leader": True}
    html = documents.render_html("refusal", context, form_set=form_set)
    assert html.count('id="signature-slot"') == 1
    assert "Người tiếp nhận hồ sơ" not in html
    assert context["leader"]["name"] in html


# --- the result documents ---------------------------------------------------------------------


@pytest.mark.parametrize("code", PROCEDURES)
def test_result_document_renders(code: str) -> None:
    doc = render("result", code)
    text = doc.text
    context = sample_context("result", procedure=code)
    for line in HEADING:
        assert line in text
    for needle in RESULT_TEXT[code]:
        assert _contains(text, needle), f"{needle!r} missing from {code}: {text[:600]}"
    assert _contains(text, context["dossier"]["applicant_name"])  # civil-status papers print names in capitals
    assert context["leader"]["name"] in text
    assert all(word in text for word in ("Hạnh phúc", "An Hòa Thịnh", "Độc lập"))
    assert _contains(text, "Ủy ban nhân dân")
    if code in DECISIONS:
        assert all(part in text for part in ("Căn cứ Luật Tổ chức chính quyền địa phương", "QUYẾT ĐỊNH:",
                                             "Điều 1.", "chịu trách nhiệm thi hành", "Nơi nhận", "Như Điều 3"))
    assert all(_near(size, A4) for size in doc.sizes), doc.sizes
    assert len(doc.sizes) == 1, f"{code} runs over one page: {len(doc.sizes)}"
    # the leader signs every result: exactly one empty slot for the visible signature
    assert doc.html.count('id="signature-slot"') == 1
    assert re.search(r'<div id="signature-slot" class="signature-slot"></div>', doc.html)


def test_every_procedure_has_a_result_template() -> None:
    assert len(PROCEDURES) == 13
    assert set(PROCEDURES) <= set(documents.result_procedures())


def test_shared_partials_are_not_procedures() -> None:
    assert sorted(documents.result_procedures()) == PROCEDURES
    with pytest.raises(documents.DocumentError):
        documents.template_for("result", procedure="_result")


@pytest.mark.parametrize(("leader_title", "lines"), [
    ("Chủ tịch UBND xã", ["CHỦ TỊCH"]),
    ("Phó Chủ tịch UBND xã", ["KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH"]),
])
def test_signer_title_follows_the_leader(leader_title: str, lines: list[str]) -> None:
    context = sample_context("result", procedure="funeral_cost_support")
    context["leader"] = {"name": "Võ Thị Hạnh", "title": leader_title}
    html = documents.render_html("result", context, procedure="funeral_cost_support")
    signer = html[html.index('<div class="signer">'):html.index('id="signature-slot"')]
    roles = [role.upper() for role in re.findall(r'<div class="role">([^<]+)</div>', signer)]
    assert roles == lines


# --- what cannot be made ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "args"), [
    pytest.param("certificate", {}, id="unknown-kind"),
    pytest.param("stop_notice", {"form_set": "2018"}, id="not-in-2018-set"),
    pytest.param("receipt", {"form_set": "1999"}, id="unknown-form-set"),
    pytest.param("result", {"procedure": "land_allocation"}, id="unknown-procedure"),
    pytest.param("result", {}, id="result-without-procedure"),
])
def test_unknown_document_is_refused(kind: str, args: dict[str, str]) -> None:
    with pytest.raises(documents.DocumentError):
        documents.render_pdf(kind, sample_context("receipt"), **args)
