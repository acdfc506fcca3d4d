"""Tables as downloadable files: CSV (UTF-8 with a byte-order mark, so that Excel reads the
Vietnamese letters) and XLSX (openpyxl), with the column titles in the reader's language."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from flask import Response

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")
# A cell starting with one of these is a formula to a spreadsheet: exported text must not run.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "x" if value else ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def table_file(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]], *, fmt: str, name: str,
               title: str = "") -> Response:
    """``columns``: (key in each row, column title). ``name`` without extension."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([label for _, label in columns])
        for row in rows:
            writer.writerow([_cell(row.get(key)) for key, _ in columns])
        body = ("\ufeff" + buffer.getvalue()).encode("utf-8")
        mime = "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook(write_only=False)
        sheet = book.active
        assert sheet is not None
        sheet.title = (title or name)[:31]
        sheet.append([label for _, label in columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([_cell(row.get(key)) for key, _ in columns])
        sheet.freeze_panes = "A2"
        for index, (_, label) in enumerate(columns, start=1):
            sheet.column_dimensions[sheet.cell(1, index).column_letter].width = max(10, min(40, len(label) + 4))
        buffer_bytes = io.BytesIO()
        book.save(buffer_bytes)
        body = buffer_bytes.getvalue()
        mime = XLSX_MIME
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return Response(body, mimetype=mime,
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})
