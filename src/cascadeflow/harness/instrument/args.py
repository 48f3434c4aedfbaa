"""Reading the keyword arguments an SDK method was called with."""

from __future__ import annotations

from typing import Any, TypeGuard


def given(value: Any) -> TypeGuard[Any]:
    """Was this argument given? The SDKs mark an omitted one with their NotGiven / Omit sentinels (or None)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")
