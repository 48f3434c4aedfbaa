"""Audit logs as one DuckDB view: JSONL files and globs, SQLite databases and PostgreSQL tables, read by one query.

Every source is projected onto the same columns (`AUDIT_COLUMNS`), so the logs of many processes or machines,
in any mix of sinks, are one `audit` view. DuckDB is loaded on first use (the `reports` extra); its SQLite and
PostgreSQL readers come from the extension packages that extra installs, never from the network.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from cascadeflow.errors import ConfigurationError, MissingExtraError
from cascadeflow.trace.events import ANOMALY_ACTION  # noqa: F401  re-exported: the reports leave events out
from cascadeflow.trace.postgres import is_postgres, split_url
from cascadeflow.trace.reader import is_sqlite, log_files, sqlite_path
from cascadeflow.trace.redact import redact_url

EXTRA = "reports"
LOCK_SUFFIX = ".lock"  # JsonlSink's lock file beside each log

# (column, DuckDB type) of the `audit` view, whatever sink a record came from
AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("timestamp", "VARCHAR"), ("request_id", "VARCHAR"), ("user_id", "VARCHAR"), ("agent_id", "VARCHAR"),
    ("action", "VARCHAR"), ("model_selected", "VARCHAR"), ("model_requested", "VARCHAR"),
    ("cost_usd", "DOUBLE"), ("input_tokens", "BIGINT"), ("output_tokens", "BIGINT"), ("latency_ms", "DOUBLE"),
    ("error", "VARCHAR"), ("metadata", "JSON"), ("tiers", "JSON"), ("prompt", "JSON"),
)
_SCALARS = tuple((name, kind) for name, kind in AUDIT_COLUMNS if kind != "JSON")
_OBJECTS = tuple(name for name, kind in AUDIT_COLUMNS if kind == "JSON")


def duckdb_module() -> Any:
    try:
        return import_module("duckdb")
    except ImportError:
        raise MissingExtraError("reports over audit logs", EXTRA) from None


def connect() -> Any:
    """A private in-memory DuckDB connection that never downloads an extension and prints nothing (DuckDB's
    progress bar would land in the command's output)."""
    duckdb = duckdb_module()
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET enable_progress_bar = false")
    return con


def load_extension(con: Any, name: str) -> None:
    """Load DuckDB's `sqlite_scanner` or `postgres_scanner` from the package the `reports` extra installs
    (`duckdb-extension-<name>`, built for this DuckDB version), else from DuckDB's own extension folder."""
    duckdb = duckdb_module()
    try:
        module = import_module(f"duckdb_extension_{name}")
    except ImportError:
        module = None
    if module is not None and module.__file__ is not None:
        path = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        if path.exists():
            con.load_extension(str(path))
            return
    try:
        con.load_extension(name)
    except duckdb.Error:
        raise MissingExtraError(f"reading audit logs through DuckDB's {name} (for DuckDB {duckdb.__version__})",
                                EXTRA) from None


def expand_jsonl(source: str) -> list[str]:
    """The files a JSONL source names: a glob, a directory (its `*.jsonl` logs), or a log (with its rotated
    backups, oldest first)."""
    if any(c in source for c in "*?["):
        # `audit.jsonl*` also matches the writers' lock files, which hold no records
        files = sorted(f for f in glob.glob(source, recursive=True) if not f.endswith(LOCK_SUFFIX) and os.path.isfile(f))
    elif os.path.isdir(source):
        files = [str(p) for log in sorted(Path(source).glob("*.jsonl")) for p in log_files(log)]
    else:
        files = [str(p) for p in log_files(source)]
    if not files:
        raise ConfigurationError(f"no audit log matches {source!r}; pass a JSONL file, a glob ('logs/*.jsonl'), "
                                 "a directory, a SQLite database or a postgresql:// URL")
    return files


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _jsonl_select(files: Sequence[str]) -> str:
    columns = ", ".join(f"{_sql_text(name)}: {_sql_text(kind)}" for name, kind in AUDIT_COLUMNS)
    listed = ", ".join(_sql_text(f) for f in files)
    names = ", ".join(name for name, _ in AUDIT_COLUMNS)
    # ignore_errors: a torn last line (a writer killed mid-record) is skipped, as the log reader does; a line
    # that is not a record at all comes back empty and is dropped (every sink writes a timestamp)
    return (f"SELECT {names} FROM read_json([{listed}], format='newline_delimited', columns={{{columns}}}, "
            "ignore_errors=true, maximum_object_size=67108864) WHERE timestamp IS NOT NULL")


def _record_select(relation: str) -> str:
    """The audit columns out of a table whose `record` column holds the JSON record (SQLite, PostgreSQL):
    the scalars are parsed in one pass over each record."""
    paths = ", ".join(_sql_text(f"$.{name}") for name, _ in _SCALARS)
    scalars = ", ".join(f"TRY_CAST(v[{i}] AS {kind}) AS {name}" if kind != "VARCHAR" else f"v[{i}] AS {name}"
                        for i, (name, kind) in enumerate(_SCALARS, start=1))
    objects = ", ".join(f"json_extract(r, {_sql_text('$.' + name)}) AS {name}" for name in _OBJECTS)
    names = ", ".join(name for name, _ in AUDIT_COLUMNS)
    return (f"SELECT {names} FROM (SELECT {scalars}, {objects} FROM "
            f"(SELECT CAST(record AS VARCHAR) AS r, json_extract_string(CAST(record AS VARCHAR), [{paths}]) AS v "
            f"FROM {relation}))")


def source_select(con: Any, source: str | os.PathLike[str], index: int) -> str:
    """The SELECT that reads one source as the audit columns (attaching or loading what it needs)."""
    text = str(source)
    if is_postgres(text):
        load_extension(con, "postgres_scanner")
        conninfo, schema, table = split_url(text)
        alias = f"audit_pg_{index}"
        duckdb = duckdb_module()
        try:
            con.execute(f"ATTACH {_sql_text(conninfo)} AS {alias} (TYPE postgres, READ_ONLY)")
        except duckdb.Error as exc:
            raise ConfigurationError(f"cannot read the audit table at {redact_url(text)}: {exc}") from None
        return _record_select(f'{alias}."{schema}"."{table}"')
    if is_sqlite(text):
        path = sqlite_path(text)
        if not path.exists():
            raise ConfigurationError(f"no audit database at {path}")
        load_extension(con, "sqlite_scanner")
        return _record_select(f"sqlite_scan({_sql_text(str(path))}, 'audit')")
    return _jsonl_select(expand_jsonl(text))


def source_names(sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """The sources one argument names: a list of them, or one (a comma-separated string names several)."""
    if isinstance(sources, (str, os.PathLike)):
        text = str(sources)
        return [text] if is_postgres(text) else [part.strip() for part in text.split(",") if part.strip()]
    return [str(s) for s in sources]


def open_audit(sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> Any:
    """A DuckDB connection with a view `audit` over every source (a path, glob, SQLite database or
    postgresql:// URL, or a list of them; a comma-separated string also works)."""
    listed = source_names(sources)
    if not listed:
        raise ConfigurationError("no audit log given; pass a JSONL path or glob, a SQLite database or a "
                                 "postgresql:// URL")
    con = connect()
    selects = [source_select(con, source, i) for i, source in enumerate(listed)]
    con.execute("CREATE TEMP VIEW audit AS " + " UNION ALL ".join(selects))
    return con
