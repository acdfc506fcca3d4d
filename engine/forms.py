"""Task and citizen forms: JSON Schema validation with field-level messages."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

_FORMATS = FormatChecker()


class FormSchemaError(ValueError):
    """A form schema in the catalogue is not valid JSON Schema."""


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    import json

    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise FormSchemaError(f"invalid form schema: {exc.message}") from exc
    return Draft202012Validator(schema, format_checker=_FORMATS)


def check_schema(schema: Mapping[str, Any]) -> None:
    import json

    _validator(json.dumps(schema, sort_keys=True))


# Field messages people can act on (no echo of the value; the portal translates them).
PLAIN_MESSAGES = {
    "minLength": "too short", "maxLength": "too long", "pattern": "not in the expected format",
    "enum": "choose one of the options", "const": "not an allowed value", "type": "not the expected kind of value",
    "minimum": "too small", "maximum": "too large", "exclusiveMinimum": "too small",
    "exclusiveMaximum": "too large", "minItems": "choose at least one", "maxItems": "too many items",
}
FORMAT_MESSAGES = {"date": "not a valid date", "date-time": "not a valid date and time",
                   "email": "not a valid e-mail address"}


def validate(schema: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Field path (dotted) → messages; empty when the data is valid."""
    import json

    validator = _validator(json.dumps(schema, sort_keys=True))
    errors: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = f"{path}.{missing}" if path else missing
            message = "required"
        elif error.validator == "additionalProperties":
            extra = sorted(set(data) - set(error.schema.get("properties", {}))) if not path else []
            for name in extra:
                errors.setdefault(name, []).append("unknown field")
            if extra:
                continue
            message = error.message
        else:
            message = PLAIN_MESSAGES.get(str(error.validator), error.message)
            if error.validator == "format":
                message = FORMAT_MESSAGES.get(str(error.validator_value), message)
        errors.setdefault(path or "_", []).append(message)
    return errors
