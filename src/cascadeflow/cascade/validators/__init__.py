"""Validators: one signal per module, each `check(request, response) -> Signal | None` (None = not available)."""

from cascadeflow.cascade.validators.base import Check, Signal

__all__ = ["Check", "Signal"]
