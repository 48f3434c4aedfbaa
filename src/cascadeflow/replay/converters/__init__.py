"""Converters from public recorded-answer layouts (RouteLLM, ZeroEval, zellinger) and our audit log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cascadeflow.errors import ReplayDataError
from cascadeflow.replay.converters.names import ModelResolver
from cascadeflow.replay.format import ReplayDataset

FORMATS = ("routellm", "zeroeval", "zellinger", "audit")


def convert(fmt: str, path: str | Path, resolver: ModelResolver | None = None) -> ReplayDataset:
    """Read `path` (a file or folder in the layout of `fmt`) into a recorded-outcome dataset; `resolver`
    prices the recorded model names (explicit prices, a mapping, else the price book)."""
    return _converter(fmt)(Path(path), resolver)


def _converter(fmt: str) -> Callable[[Path, ModelResolver | None], ReplayDataset]:
    if fmt == "routellm":
        from cascadeflow.replay.converters.routellm import convert_routellm
        return convert_routellm
    if fmt == "zeroeval":
        from cascadeflow.replay.converters.zeroeval import convert_zeroeval
        return convert_zeroeval
    if fmt == "zellinger":
        from cascadeflow.replay.converters.zellinger import convert_zellinger
        return convert_zellinger
    if fmt == "audit":
        from cascadeflow.replay.converters.audit import convert_audit
        return convert_audit
    raise ReplayDataError(f"unknown source format {fmt!r}; choose one of: {', '.join(FORMATS)}")


__all__ = ["FORMATS", "ModelResolver", "convert"]
