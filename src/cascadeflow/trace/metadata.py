"""Caller metadata made storable: every audit sink writes it as JSON, so it is normalised to JSON's shapes
before a call is sent, or refused with a typed error naming what is wrong.

Normalised: tuples and sets become lists; int, float, bool and None keys become strings (as `json.dumps`
writes them); Enum members become their value (or name); objects with `to_dict()` or pydantic's `model_dump()` become what those return; any other
value becomes its `str()`. Refused (InvalidRequestError): a key of another type (a tuple key has no JSON
spelling that reads back), a structure that contains itself, and nesting deeper than MAX_METADATA_DEPTH.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from cascadeflow.errors import InvalidRequestError

MAX_METADATA_DEPTH = 32  # levels of nested dicts and lists; far above any tag structure, far below recursion
_JSON_SCALARS = (str, int, float, bool, type(None))


def jsonable(value: Any) -> Any:
    """A value JSON cannot write, as the audit log writes it: an Enum member's value (its name when the value
    is not a JSON scalar), `to_dict()`, `model_dump()` or its text."""
    if isinstance(value, enum.Enum):  # e.g. metadata={"task_type": TaskType.MEMORY_RECALL}: "memory_recall"
        return value.value if isinstance(value.value, _JSON_SCALARS) else value.name
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    model_dump = getattr(value, "model_dump", None)  # pydantic models in caller metadata
    if callable(model_dump):
        return model_dump()
    return str(value)


def normalise_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-shaped copy of `metadata` (see the module docstring); InvalidRequestError when it cannot be."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidRequestError(f"metadata must be a mapping of names to values, got {type(metadata).__name__}")
    return _mapping(metadata, "metadata", 1, set())


def _mapping(value: Mapping[Any, Any], path: str, depth: int, open_ids: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, str):
            name = key
        elif isinstance(key, (int, float, bool)) or key is None:
            name = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
        else:
            raise InvalidRequestError(f"{path} has a key of type {type(key).__name__} ({key!r}); metadata keys "
                                      "must be strings (or numbers), e.g. join a tuple key into one string")
        out[name] = _value(item, f"{path}[{name!r}]", depth, open_ids)
    return out


def _value(value: Any, path: str, depth: int, open_ids: set[int]) -> Any:
    if isinstance(value, _JSON_SCALARS):
        return value
    if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        converted = jsonable(value)
        if converted is value or isinstance(converted, _JSON_SCALARS):
            return converted
        value = converted  # a to_dict() / model_dump() result: checked like the caller's own structures
    if depth >= MAX_METADATA_DEPTH:
        raise InvalidRequestError(f"{path} is nested more than {MAX_METADATA_DEPTH} levels deep; flatten the "
                                  "metadata (it is written into every audit record)")
    if id(value) in open_ids:
        raise InvalidRequestError(f"{path} contains itself (a reference cycle); metadata must be a tree of "
                                  "plain values")
    open_ids.add(id(value))
    try:
        if isinstance(value, Mapping):
            return _mapping(value, path, depth + 1, open_ids)
        return [_value(item, f"{path}[{i}]", depth + 1, open_ids) for i, item in enumerate(value)]
    finally:
        open_ids.discard(id(value))
