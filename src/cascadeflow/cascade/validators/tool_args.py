"""The tool_args signal: every tool call names an offered tool and its arguments parse and fit that tool's schema."""

from __future__ import annotations

import json

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.cascade.validators.format import compile_schema, schema_error
from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import Request, Response

NAME = "tool_args"


def _problem(call_name: str, arguments: str, request: Request) -> str | None:
    spec = next((t for t in request.tools if t.name == call_name), None)
    if spec is None:
        offered = ", ".join(t.name for t in request.tools) or "none"
        return f"unknown tool {call_name!r} (offered: {offered})"
    try:
        value = json.loads(arguments or "{}")
    except ValueError as exc:
        return f"{call_name}: arguments are not valid JSON ({exc})"
    try:
        validator = compile_schema(spec.parameters)
    except ConfigurationError:
        return None  # the tool's own schema is broken: nothing to validate against, not the draft's fault
    violation = schema_error(validator, value)
    return f"{call_name}: {violation}" if violation else None


def check(request: Request, response: Response) -> Signal | None:
    """Available when the draft calls tools; any bad call vetoes."""
    if not response.tool_calls:
        return None
    problems = [p for c in response.tool_calls if (p := _problem(c.name, c.arguments, request))]
    if problems:
        return Signal(NAME, 0.0, "; ".join(problems), veto=True)
    return Signal(NAME, 1.0, f"{len(response.tool_calls)} tool call(s) with valid arguments")
