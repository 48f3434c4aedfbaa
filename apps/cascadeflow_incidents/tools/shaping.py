"""Narrowing tool output the same way for every backend: keep the items of a payload's main list that
match, leaving the payload's shape as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def items_of(data: Any) -> list[Any]:
    """The main list of a payload: the payload itself if a list, else its first list-valued field."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return next((v for v in data.values() if isinstance(v, list)), [])
    return []


def keep(data: Any, predicate: Callable[[Any], bool]) -> Any:
    if isinstance(data, list):
        return [item for item in data if predicate(item)]
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list):
                return {**data, key: [item for item in value if predicate(item)]}
    return data


def mentions(item: Any, needle: str) -> bool:
    return needle.lower() in str(item).lower()
