"""The format signal: the answer is JSON (bare or inside a ``` fence) and fits the JSON Schema, when one is required."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request, Response

NAME = "format"
_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n(.*?)\n?```", re.DOTALL)
_CACHE_SIZE = 256
_compiled: dict[int, tuple[Mapping[str, Any], Any]] = {}


def compile_schema(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for `schema` (cached per schema object); ConfigurationError if it is invalid."""
    hit = _compiled.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    import jsonschema

    if not isinstance(schema, Mapping):
        raise ConfigurationError(f"json_schema must be a dict (a JSON Schema), got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"invalid JSON Schema: {exc.message}") from None
    validator = cls(schema)
    if len(_compiled) >= _CACHE_SIZE:
        _compiled.clear()
    _compiled[id(schema)] = (schema, validator)  # keep the schema alive so its id stays unique
    return validator


def parse_json_answer(text: str) -> tuple[Any, str | None]:
    """The JSON value in an answer (bare, or the first ```json fence); (None, error) when there is none."""
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except ValueError as exc:
        error = f"not valid JSON: {exc}"
    fence = _FENCE.search(text)
    if fence:
        try:
            return json.loads(fence.group(1)), None
        except ValueError as exc:
            error = f"fenced block is not valid JSON: {exc}"
    return None, error


def schema_error(validator: Any, value: Any) -> str | None:
    """The most relevant schema violation as 'path: message', or None when `value` fits."""
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{path}: {error.message}"


def _requested_schema(request: Request) -> tuple[bool, Mapping[str, Any] | None]:
    fmt = request.response_format
    if not isinstance(fmt, Mapping):
        return False, None
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        return True, spec.get("schema") if isinstance(spec, Mapping) else None
    return kind == "json_object", None


def check(request: Request, response: Response, *, required: bool = False,
          schema: Mapping[str, Any] | None = None) -> Signal | None:
    """Available when JSON is required (by the config or the request's response_format); else None."""
    asked, asked_schema = _requested_schema(request)
    schema = schema if schema is not None else asked_schema
    if not (required or asked or schema is not None):
        return None
    if response.tool_calls and not (response.content or "").strip():
        return None  # a tool-call turn carries no answer text to format
    value, error = parse_json_answer(response.content or "")
    if error is not None:
        return Signal(NAME, 0.0, error, veto=True)
    if schema is None:
        return Signal(NAME, 1.0, "valid JSON")
    violation = schema_error(compile_schema(schema), value)
    if violation is not None:
        return Signal(NAME, 0.0, f"JSON does not match the schema at {violation}", veto=True)
    return Signal(NAME, 1.0, "valid JSON matching the schema")
