"""Checks of the schemas `discover` emits, and of records against them (used by integration_tests/test_schemas.py).

- `schema_problems(stream, schema)`: what makes a discovered schema unfit for Airbyte destinations or for this
  project's rules: a `$ref` left unresolved, `allOf` / `not`, a field whose type does not allow null, an object
  without `additionalProperties: true`, a property without a description.
- `RecordChecker(stream, schema, primary_key)`: validates records one at a time (JSON Schema draft 7; integers are
  strict, so `1.0` and `true` are not integers; a `date-time` value must be ISO 8601 with a UTC offset, as every
  timestamp the connector declares is UTC); `failures()` names the stream, the record (by primary key), the field
  as a JSON path, the value and the rule it breaks.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from jsonschema import Draft7Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

MAX_ERRORS_SHOWN = 8  # distinct schema rules shown per stream; the count of bad records is always shown
MAX_VALUE_CHARS = 120
UNSUPPORTED_KEYWORDS = ("$ref", "allOf", "not")


# --- the schema itself -------------------------------------------------------------------------------------------


def _subschemas(schema: Any, path: str) -> Iterator[Tuple[str, Mapping[str, Any], bool]]:
    """(path, subschema, is_property) for the schema and everything below it that holds a schema."""
    if not isinstance(schema, Mapping):
        return
    for name, sub in (schema.get("properties") or {}).items():
        yield f"{path}.{name}", sub, True
        yield from _subschemas(sub, f"{path}.{name}")
    items = schema.get("items")
    if items is not None:
        for index, sub in enumerate(items) if isinstance(items, list) else [(None, items)]:
            item_path = f"{path}[]" if index is None else f"{path}[{index}]"
            yield item_path, sub, False
            yield from _subschemas(sub, item_path)
    for keyword in ("anyOf", "oneOf"):
        for index, sub in enumerate(schema.get(keyword) or []):
            yield f"{path}({keyword}[{index}])", sub, False
            yield from _subschemas(sub, f"{path}({keyword}[{index}])")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield f"{path}.*", schema["additionalProperties"], False
        yield from _subschemas(schema["additionalProperties"], f"{path}.*")


def _types(schema: Mapping[str, Any]) -> List[str]:
    declared = schema.get("type", [])
    return [declared] if isinstance(declared, str) else list(declared)


def schema_problems(stream: str, schema: Mapping[str, Any]) -> List[str]:
    problems = []
    if schema.get("additionalProperties") is not True:
        problems.append(f"stream '{stream}': the record schema lacks additionalProperties: true")
    for path, sub, is_property in [("$", schema, False), *_subschemas(schema, "$")]:
        if not isinstance(sub, Mapping):
            problems.append(f"stream '{stream}' {path}: not a schema object")
            continue
        for keyword in UNSUPPORTED_KEYWORDS:
            if keyword in sub:
                problems.append(f"stream '{stream}' {path}: uses `{keyword}`")
        types = _types(sub)
        if path != "$" and "null" not in types and not any(k in sub for k in ("anyOf", "oneOf")):
            problems.append(f"stream '{stream}' {path}: type {types or '(none)'} does not allow null")
        if "object" in types and path != "$" and sub.get("additionalProperties") is not True:
            problems.append(f"stream '{stream}' {path}: an object without additionalProperties: true")
        if is_property and not str(sub.get("description") or "").strip():
            problems.append(f"stream '{stream}' {path}: no description")
    return problems


# --- records -------------------------------------------------------------------------------------------------------


def _is_strict_integer(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft7Validator, type_checker=Draft7Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer)
)
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_utc_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports it
    return datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", value)).tzinfo is not None


def json_path(parts: Sequence[Any]) -> str:
    """`$.a.b[0]['event-data']` for the path of a value inside a record."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += f"[{str(part)!r}]"
    return out


def short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    for kind, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def _rule(error: ValidationError) -> str:
    if error.validator == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else expected
        return f"expected {' or '.join(expected)}, got {_json_type(error.instance)}"
    if error.validator == "format":
        return f"not a {error.validator_value} (ISO 8601 with a UTC offset)"
    return short(error.message, 200)


class RecordChecker:
    def __init__(self, stream: str, schema: Mapping[str, Any], primary_key: Optional[Sequence[Sequence[str]]] = None):
        self.stream = stream
        self.validator = _Validator(schema, format_checker=_FORMATS)
        self.primary_key = [list(key) for key in primary_key or []]
        self.records = 0
        self.invalid = 0
        self.errors: Dict[Tuple[Any, ...], str] = {}  # first error per schema rule

    def _describe_record(self, number: int, record: Mapping[str, Any]) -> str:
        keys = []
        for key in self.primary_key:
            value: Any = record
            for part in key:
                value = value.get(part) if isinstance(value, Mapping) else None
            keys.append(f"{'.'.join(key)}={short(value, 60)}")
        return f"record #{number}" + (f" ({', '.join(keys)})" if keys else "")

    def check(self, record: Mapping[str, Any]) -> None:
        number = self.records
        self.records += 1
        errors = sorted(self.validator.iter_errors(record), key=lambda e: list(e.absolute_path))
        if not errors:
            return
        self.invalid += 1
        for error in errors:
            rule = tuple(error.schema_path)
            if rule not in self.errors:
                self.errors[rule] = (
                    f"{self._describe_record(number, record)}: {json_path(list(error.absolute_path))} = "
                    f"{short(error.instance)}: {_rule(error)}"
                )

    def failures(self) -> Optional[str]:
        if not self.invalid:
            return None
        shown = list(self.errors.values())[:MAX_ERRORS_SHOWN]
        lines = [f"stream '{self.stream}': {self.invalid} of {self.records} records do not match the discovered schema"]
        lines += [f"    {line}" for line in shown]
        if len(self.errors) > len(shown):
            lines.append(f"    ... and {len(self.errors) - len(shown)} more distinct schema rule(s) broken")
        return "\n".join(lines)
