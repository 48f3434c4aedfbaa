"""Auto-instrumentation of the official openai and anthropic SDKs (patched at the resource-method level)."""

from __future__ import annotations

from cascadeflow.harness.instrument.patching import patched_methods, unpatch_all


def patch_all() -> list[str]:
    """Patch every installed SDK (idempotent); returns the patched methods."""
    from cascadeflow.harness.instrument.anthropic import patch_anthropic
    from cascadeflow.harness.instrument.openai import patch_openai

    patch_openai()
    patch_anthropic()
    return patched_methods()


__all__ = ["patch_all", "patched_methods", "unpatch_all"]
