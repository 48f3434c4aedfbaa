"""Where the audit log goes: the CASCADEFLOW_AUDIT_PATH setting and `open_sinks(spec)` turning a config into sinks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.trace.reader import SQLITE_SCHEME, is_sqlite, sqlite_path

AUDIT_PATH_ENV = "CASCADEFLOW_AUDIT_PATH"
AUDIT_SPOOL_ENV = "CASCADEFLOW_AUDIT_SPOOL"
DEFAULT_AUDIT_PATH = Path(".cascadeflow") / "audit.jsonl"
OTEL_SPEC = "otel"
AUDIT_OFF = "off"  # CASCADEFLOW_AUDIT_PATH=off: no default audit log


def default_audit_path(environ: Mapping[str, str] | None = None) -> Path:
    """The audit log location: $CASCADEFLOW_AUDIT_PATH, else `.cascadeflow/audit.jsonl` under the cwd.

    This is the only place cascadeflow reads that variable.
    """
    value = (os.environ if environ is None else environ).get(AUDIT_PATH_ENV, "").strip()
    return Path(value) if value else DEFAULT_AUDIT_PATH


def default_spool_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where records a failing sink refused go: $CASCADEFLOW_AUDIT_SPOOL, else a per-user file in the
    temporary directory (usually another file system than the audit log's, so a full disk there is not
    full here). This is the only place cascadeflow reads that variable."""
    value = (os.environ if environ is None else environ).get(AUDIT_SPOOL_ENV, "").strip()
    if value:
        return Path(value)
    owner = os.getuid() if hasattr(os, "getuid") else "user"  # one spool per user where the OS has user ids
    return Path(tempfile.gettempdir()) / f"cascadeflow-audit-spool-{owner}.jsonl"


def default_audit_off(environ: Mapping[str, str] | None = None) -> bool:
    """Whether $CASCADEFLOW_AUDIT_PATH is `off`: the switch for processes that must write no audit file."""
    return (os.environ if environ is None else environ).get(AUDIT_PATH_ENV, "").strip().lower() == AUDIT_OFF


def default_sinks(*, record_content: bool = False) -> list[Any]:
    """The sinks of a runtime nobody configured: the JSONL log at `default_audit_path()`, so every call is
    audited by default (none when the default log is switched off)."""
    return open_sinks(None, record_content=record_content)


def open_sinks(spec: Any = None, *, record_content: bool = False, **jsonl_options: Any) -> list[Any]:
    """Turn a sink configuration into sink objects.

    `spec` is None (the default JSONL log at `default_audit_path()`, or no sink when
    $CASCADEFLOW_AUDIT_PATH is `off`), a path (JSONL; `.db`/`.sqlite` files
    are SQLite), `"sqlite:///path.db"`, `"postgresql://user@host/db?table=..."`, `"otel"`, a comma-separated string of those, a sink object (anything
    with `write(record)`, passed through), or a list mixing them. `jsonl_options` (max_bytes, backups,
    fsync) go to every JsonlSink.
    """
    if spec is None:
        if default_audit_off():
            return []
        spec = [default_audit_path()]
    elif isinstance(spec, str):
        spec = [part for part in (p.strip() for p in spec.split(",")) if part]
    elif not isinstance(spec, Sequence):
        spec = [spec]
    if not spec:
        raise ConfigurationError("empty audit sink spec; pass a path, 'sqlite:///path.db' or 'otel'")
    return [_one_sink(item, record_content, jsonl_options) for item in spec]


def _one_sink(item: Any, record_content: bool, jsonl_options: dict[str, Any]) -> Any:
    if callable(getattr(item, "write", None)) and not isinstance(item, (str, os.PathLike)):
        return item
    if not isinstance(item, (str, os.PathLike)):
        raise ConfigurationError(f"cannot make an audit sink from {item!r}; pass a path, "
                                 f"'{SQLITE_SCHEME}path.db', 'otel' or an object with write(record)")
    text = str(item)
    if text == OTEL_SPEC:
        from cascadeflow.trace.otel import OtelSink

        return OtelSink(record_content=record_content)
    if is_sqlite(text):
        from cascadeflow.trace.sqlite import SqliteSink

        if not text.removeprefix(SQLITE_SCHEME).strip():
            raise ConfigurationError(f"no database path in {text!r}; write '{SQLITE_SCHEME}audit.db'")
        return SqliteSink(sqlite_path(text), record_content=record_content)
    if text.startswith(("postgres://", "postgresql://")):
        from cascadeflow.trace.postgres import PostgresSink

        return PostgresSink(text, record_content=record_content)
    if "://" in text:
        raise ConfigurationError(f"unknown audit sink {text!r}; use a file path, '{SQLITE_SCHEME}path.db', "
                                 f"'postgresql://user@host/db' or 'otel'")
    from cascadeflow.trace.jsonl import JsonlSink

    return JsonlSink(text, record_content=record_content, **jsonl_options)
