"""Harness settings and where they come from: explicit argument > CASCADEFLOW_MODE environment variable >
config file (cascadeflow.toml / cascadeflow.yaml in the working directory, or a given path) > defaults.

A file never weakens governance the caller asked for: when the mode `enforce` comes from an argument or the
environment, a file's `instrument = false`, `audit = false` or `allow_cross_provider = true` is ignored (with
a warning). Every setting records where it came from (`HarnessConfig.sources`); init() logs them.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cascadeflow.errors import ConfigurationError

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("off", "observe", "enforce")
ENV_MODE = "CASCADEFLOW_MODE"
ENV_CONFIG = "CASCADEFLOW_CONFIG"  # path of the config file, instead of looking in the working directory
CONFIG_FILENAMES: tuple[str, ...] = ("cascadeflow.toml", "cascadeflow.yaml", "cascadeflow.yml")


@dataclass(frozen=True, slots=True)
class HarnessConfig:
    """Process-wide harness settings (see docs/harness.md for each one)."""

    mode: str = "off"
    ledger_url: str = "memory://"
    audit: Any = None  # sinks spec for trace.open_sinks (path, "sqlite:///x.db", "otel", list); False: none
    compliance: str | None = None  # default compliance preset for every run scope
    compliance_file: str | None = None  # default compliance policy file (TOML) for every run scope
    record_content: bool = False  # record prompts and answers in audit records
    instrument: bool = True  # patch the openai / anthropic SDKs in observe / enforce
    allow_cross_provider: bool = False  # may a policy switch a call to another vendor's model?
    source: str = "defaults"  # where the mode came from: argument | environment | file path | defaults
    sources: Mapping[str, str] = field(default_factory=dict)  # every setting given -> where it came from

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r} "
                                     f"(from {self.source})")


_FIELDS = {f.name for f in fields(HarnessConfig)} - {"source", "sources"}
# values a config file may not set when the caller asked for enforce: each would let calls go ungoverned
_WEAKENING: dict[str, Any] = {"instrument": False, "audit": False, "allow_cross_provider": True}


class _FileSettings(BaseModel):
    """The types a config file's values must have: `record_content = "no"` is false, not a truthy string,
    and `instrument = "maybe"` is an error that names the setting."""

    model_config = ConfigDict(extra="forbid")

    mode: str | None = None
    ledger_url: str | None = None
    audit: str | bool | list[str] | None = None
    compliance: str | None = None
    record_content: bool | None = None
    instrument: bool | None = None
    allow_cross_provider: bool | None = None


def _typed(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        checked = _FileSettings.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigurationError(f"config file {str(path)!r}: {problems}") from None
    return checked.model_dump(exclude_unset=True)


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The explicit path, else $CASCADEFLOW_CONFIG, else the first cascadeflow.{toml,yaml} in the cwd."""
    if path is None:
        path = os.environ.get(ENV_CONFIG) or None
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise ConfigurationError(f"config file {str(found)!r} does not exist")
        return found
    for name in CONFIG_FILENAMES:
        candidate = Path.cwd() / name
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML or YAML file; a `[harness]` table is used when present."""
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"cannot parse config file {str(path)!r}: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"cannot parse config file {str(path)!r}: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"config file {str(path)!r} must hold a table of settings")
    data = data.get("harness", data)
    unknown = set(data) - _FIELDS
    if unknown:
        raise ConfigurationError(f"config file {str(path)!r}: unknown settings {sorted(unknown)}; "
                                 f"known: {sorted(_FIELDS)}")
    return _typed(path, data)


def resolve_config(mode: str | None = None, *, config_file: str | os.PathLike[str] | None = None,
                   **explicit: Any) -> HarnessConfig:
    """Merge the layers; `explicit` holds settings passed to init() (None means "not given")."""
    unknown = set(explicit) - _FIELDS
    if unknown:
        raise ConfigurationError(f"unknown init() settings {sorted(unknown)}; known: {sorted(_FIELDS)}")
    settings: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = find_config_file(config_file)
    if path is not None:
        settings.update(read_config_file(path))
        sources.update(dict.fromkeys(settings, f"file {path}"))
    env_mode = os.environ.get(ENV_MODE)
    if env_mode:
        settings["mode"], sources["mode"] = env_mode.strip().lower(), f"environment {ENV_MODE}"
    if mode is not None:
        settings["mode"], sources["mode"] = mode, "argument"
    given = {k: v for k, v in explicit.items() if v is not None}
    settings.update(given)
    sources.update(dict.fromkeys(given, "argument"))
    if settings.get("mode") == "enforce" and not sources["mode"].startswith("file"):
        _drop_weakening(settings, sources)
    source = sources.get("mode", "defaults").removeprefix("file ")
    try:
        return replace(HarnessConfig(), **settings, source=source, sources=sources)
    except TypeError as exc:
        raise ConfigurationError(f"invalid harness settings: {exc}") from None


def _drop_weakening(settings: dict[str, Any], sources: dict[str, str]) -> None:
    """Remove the file settings that would switch governance off under an explicit `enforce`."""
    for name, weak in _WEAKENING.items():
        if name in settings and sources[name].startswith("file") and settings[name] == weak:
            log.warning("cascadeflow: %s = %r from %s ignored: mode enforce was set by %s, and a file may not "
                        "weaken it", name, weak, sources[name].removeprefix("file "), sources["mode"])
            del settings[name]
            sources[name] = "defaults (file value ignored under enforce)"
