"""HTML forms from a task's JSON Schema: which widget each property gets, and how a posted form
turns back into typed data. Validation itself is the engine's (engine.forms, server-side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

DECISION = "decision"
LONG_TEXT = 300  # strings allowed to be longer than this get a textarea


@dataclass(frozen=True)
class FormField:
    name: str
    title: str
    widget: str  # text | textarea | number | date | checkbox | select | checkboxes | lines
    required: bool
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _widget(prop: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    kind = prop.get("type")
    if "enum" in prop:
        return "select", tuple(str(v) for v in prop["enum"])
    if kind == "boolean":
        return "checkbox", ()
    if kind in ("integer", "number"):
        return "number", ()
    if kind == "array":
        items = prop.get("items") or {}
        if "enum" in items:
            return "checkboxes", tuple(str(v) for v in items["enum"])
        return "lines", ()
    if prop.get("format") == "date":
        return "date", ()
    if prop.get("format") == "date-time":
        return "datetime", ()
    if (prop.get("maxLength") or 0) > LONG_TEXT:
        return "textarea", ()
    return "text", ()


def form_fields(schema: dict[str, Any]) -> list[FormField]:
    """The fields to render, in schema order, without ``decision`` (rendered as buttons)."""
    required = set(schema.get("required") or [])
    result = []
    for name, prop in (schema.get("properties") or {}).items():
        if name == DECISION:
            continue
        widget, options = _widget(prop)
        result.append(FormField(
            name=name, title=str(prop.get("title") or name), widget=widget, required=name in required,
            options=options, minimum=prop.get("minimum"), maximum=prop.get("maximum"),
            max_length=prop.get("maxLength"),
        ))
    return result


def decisions(schema: dict[str, Any]) -> list[str]:
    prop = (schema.get("properties") or {}).get(DECISION) or {}
    if "enum" in prop:
        return [str(v) for v in prop["enum"]]
    if "const" in prop:
        return [str(prop["const"])]
    return []


def parse_form(schema: dict[str, Any], posted: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Typed data from a posted form; conversion errors per field (the engine validates the rest).
    Empty inputs are left out, so "required" is reported by the schema validation."""
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type")
        if kind == "array":
            values = [v.strip() for v in posted.getlist(name) if v.strip()]
            if len(values) == 1 and "\n" in values[0]:
                values = [line.strip() for line in values[0].splitlines() if line.strip()]
            if values:
                data[name] = values
            continue
        if kind == "boolean":
            if name in posted:
                data[name] = posted.get(name) in ("on", "true", "1", "yes")
            continue
        raw = (posted.get(name) or "").strip()
        if raw == "":
            continue
        if kind == "integer":
            try:
                data[name] = int(raw.replace(".", "").replace(",", "").replace(" ", ""))
            except ValueError:
                errors[name] = ["must be a whole number"]
        elif kind == "number":
            try:
                data[name] = float(raw.replace(",", "."))
            except ValueError:
                errors[name] = ["must be a number"]
        else:
            data[name] = raw
    return data, errors
