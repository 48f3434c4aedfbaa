"""What a tool is: a declaration (name, description, typed parameters, the evidence kind it reads) and an
async function over a backend; `Toolbox` runs tools read-only with a timeout and an output budget."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cascadeflow import InvalidRequestError, ToolSpec

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Param:
    """One typed parameter of a tool."""

    name: str
    type: type
    description: str
    required: bool = False

    def check(self, tool: str, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise InvalidRequestError(f"tool {tool!r}: parameter {self.name!r} must be "
                                      f"{_JSON_TYPES[self.type]}, got {value!r}")
        return value


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    """Read by the model (as a ToolSpec), by the docs and by the recorded backend (`reads`: the evidence
    kind suffix it answers from, e.g. 'pods' reads 'eks_pods' or 'pods')."""

    name: str
    description: str
    params: tuple[Param, ...] = ()
    reads: str | None = None

    def spec(self) -> ToolSpec:
        props = {p.name: {"type": _JSON_TYPES[p.type], "description": p.description} for p in self.params}
        required = [p.name for p in self.params if p.required]
        return ToolSpec(name=self.name, description=self.description,
                        parameters={"type": "object", "properties": props, "required": required})

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise InvalidRequestError(f"tool {self.name!r} has no parameter {unknown[0]!r}; "
                                      f"it takes: {', '.join(known) or 'nothing'}")
        missing = [p.name for p in self.params if p.required and p.name not in arguments]
        if missing:
            raise InvalidRequestError(f"tool {self.name!r} needs parameter {missing[0]!r}")
        return {k: known[k].check(self.name, v) for k, v in arguments.items() if v is not None}


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    declaration: ToolDeclaration
    handler: Handler  # async (backend, **params) -> JSON-like data


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one call returned: the data (for analyzers), the text shown to a model (within budget)."""

    tool: str
    arguments: Mapping[str, Any]
    data: Any
    text: str
    evidence_kind: str | None
    truncated: bool
    elapsed_ms: float
    error: str | None = None


class EvidenceMissing(LookupError):
    """The backend has no source for this tool (a recorded scenario without that evidence kind)."""


class SourceUnavailable(ConnectionError):
    """A live source could not be read (refused, timed out, answered with an error status)."""


@dataclass(frozen=True, slots=True)
class ToolLimits:
    timeout_s: float = 10.0
    output_chars: int = 4000


@dataclass(slots=True)
class Toolbox:
    """The tools an investigation may call, all read-only, each call bounded in time and output size."""

    backend: Any
    tools: Sequence[Tool]
    limits: ToolLimits = field(default_factory=ToolLimits)

    def declarations(self) -> list[ToolDeclaration]:
        return [t.declaration for t in self.tools]

    def get(self, name: str) -> Tool:
        for tool in self.tools:
            if tool.declaration.name == name:
                return tool
        raise InvalidRequestError(f"unknown tool {name!r}; available: "
                                  f"{', '.join(t.declaration.name for t in self.tools)}")

    def available(self) -> list[str]:
        """Tools this backend can answer (a recorded scenario lacks some evidence kinds)."""
        has = getattr(self.backend, "has", None)
        return [t.declaration.name for t in self.tools if has is None or has(t.declaration)]

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        tool = self.get(name)
        bound = tool.declaration.bind(dict(arguments or {}))
        started = time.perf_counter()
        try:
            data = await asyncio.wait_for(tool.handler(self.backend, **bound), self.limits.timeout_s)
            error = None
        except TimeoutError:
            data, error = None, f"timed out after {self.limits.timeout_s:g}s"
        except (EvidenceMissing, SourceUnavailable) as exc:  # the investigation goes on without this source
            data, error = None, str(exc)
        elapsed = (time.perf_counter() - started) * 1000
        text = json.dumps(data, default=str, ensure_ascii=False) if error is None else f"error: {error}"
        truncated = len(text) > self.limits.output_chars
        if truncated:
            text = text[: self.limits.output_chars] + f"... [{len(text) - self.limits.output_chars} chars cut]"
        if tool.declaration.reads is None:  # the generic tool names its kind in its arguments
            kind = bound.get("kind")
        else:
            kind = getattr(self.backend, "kind_for", lambda d: d.reads)(tool.declaration)
        return ToolResult(tool=name, arguments=bound, data=data, text=text, evidence_kind=kind,
                          truncated=truncated, elapsed_ms=elapsed, error=error)
