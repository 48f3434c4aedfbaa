"""`ClientCall`: what a client asked for, in any wire format, as the arguments of one `CascadeFlow` call.

Each wire module parses its body into a ClientCall (InvalidRequestError for anything malformed, before
anything is spent) and encodes the answer back; the routes never look inside the bodies themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cascadeflow.errors import InvalidRequestError


@dataclass(slots=True)
class ClientCall:
    """One client request, wire-neutral: the model name asked for, OpenAI-shaped messages (what
    `build_request` validates) and the call options (`max_tokens`, `temperature`, `tools`, ...)."""

    model: str
    messages: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    stream: bool = False
    include_usage: bool = False  # OpenAI: stream_options.include_usage


def require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidRequestError("the request body must be a JSON object")
    return body


def require_model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' is required: the name of a model this gateway serves (GET /v1/models)")
    return model


def optional_metadata(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("'metadata' must be an object of string keys")
    return {str(k): v for k, v in raw.items()}


def refuse_unknown(body: Mapping[str, Any], known: frozenset[str], api: str) -> None:
    """A field this gateway does not understand is refused by name rather than silently dropped."""
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequestError(f"unsupported {api} parameter{'s' if len(unknown) > 1 else ''}: "
                                  f"{', '.join(unknown)}")


def as_bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequestError(f"'{name}' must be true or false")
    return value
