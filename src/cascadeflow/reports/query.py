"""`report()`: cost, calls, draft acceptance and savings per any grouping of the audit log, as one DuckDB query.

A group key is a record field (`model`, `user`, `agent`, `action`, `mode`), a time slice (`day`, `month`,
`hour`) or any caller metadata key (`feature`, `task_type`, `team`, ...). Savings compare each call with the
same tokens priced at a baseline model (by default the costliest model the log's calls reached) and add
what cache hits saved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cascadeflow.errors import ConfigurationError, UnknownModelPriceError
from cascadeflow.messages import Usage
from cascadeflow.pricing import PriceBook
from cascadeflow.reports.sources import open_audit, source_names
from cascadeflow.trace.events import ANOMALY_ACTION
from cascadeflow.trace.redact import redact_text
from cascadeflow.trace.sqlite import filter_clause

Sources = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]

# group names that are not caller metadata keys -> the SQL that computes them
_FIELDS = {
    "model": "coalesce(model_selected, json_extract_string(tiers, '$[#-1].model'), model_requested)",
    "user": "user_id", "user_id": "user_id", "agent": "agent_id", "agent_id": "agent_id",
    "action": "action",
    "day": "substr(timestamp, 1, 10)", "month": "substr(timestamp, 1, 7)",
    "hour": "substr(timestamp, 1, 13) || ':00'",
}
_METADATA_KEY = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
NONE_LABEL = "(none)"


def group_expression(name: str) -> str:
    """The SQL of one group key: a known field, else the caller metadata key `name`."""
    if name in _FIELDS:
        return _FIELDS[name]
    if not name or not set(name) <= _METADATA_KEY:
        raise ConfigurationError(f"cannot group by {name!r}: use one of {', '.join(sorted(_FIELDS))} or a "
                                 "metadata key (letters, digits, _ - .)")
    return f"json_extract_string(metadata, '$.\"{name}\"')"


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The figures of one group. `acceptance` is accepted drafts over cascaded calls (None when none
    cascaded); `baseline_usd` what the calls would have cost at the baseline model, `savings_usd` that
    less what they cost plus what cache hits saved (both None when the baseline cannot be priced)."""

    key: tuple[str, ...]
    calls: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cascaded: int
    accepted: int
    errors: int
    cache_hits: int
    cache_saved_usd: float
    latency_ms_avg: float | None
    baseline_usd: float | None
    savings_usd: float | None

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.cascaded if self.cascaded else None

    @property
    def savings_pct(self) -> float | None:
        if self.savings_usd is None or not self.baseline_usd:
            return None
        return self.savings_usd / (self.baseline_usd + self.cache_saved_usd)

    def to_dict(self, by: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(by, self.key, strict=True))
        for name in self.__slots__:
            if name != "key":
                out[name] = getattr(self, name)
        out["acceptance"] = self.acceptance
        out["savings_pct"] = self.savings_pct
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Rows (costliest first), the totals over them, and what the report was asked for."""

    by: tuple[str, ...]
    rows: tuple[ReportRow, ...]
    total: ReportRow
    baseline_model: str | None
    since: str | None
    until: str | None
    sources: tuple[str, ...]
    anomalies: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    generated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"by": list(self.by), "baseline_model": self.baseline_model, "since": self.since,
                "until": self.until, "sources": list(self.sources), "generated_at": self.generated_at,
                "rows": [r.to_dict(self.by) for r in self.rows], "total": self.total.to_dict(("total",)),
                "anomalies": list(self.anomalies)}


_CALL = f"coalesce(action, '') <> '{ANOMALY_ACTION}'"
# One pass over the records gives every group, the total (the empty grouping set), the models the calls
# reached (for the default baseline) and the anomaly events: a JSONL log is parsed once per report.
_AGGREGATES = f"""
    count(*) FILTER (WHERE {_CALL}) AS calls,
    coalesce(sum(cost_usd) FILTER (WHERE {_CALL}), 0) AS cost_usd,
    coalesce(sum(input_tokens) FILTER (WHERE {_CALL}), 0) AS input_tokens,
    coalesce(sum(output_tokens) FILTER (WHERE {_CALL}), 0) AS output_tokens,
    count(*) FILTER (WHERE action IN ('accept', 'escalate')) AS cascaded,
    count(*) FILTER (WHERE action = 'accept') AS accepted,
    count(*) FILTER (WHERE error IS NOT NULL AND {_CALL}) AS errors,
    count(*) FILTER (WHERE json_extract_string(metadata, '$.cache.hit') = 'true') AS cache_hits,
    coalesce(sum(TRY_CAST(json_extract_string(metadata, '$.cache.saved_usd') AS DOUBLE)) FILTER (WHERE {_CALL}), 0)
        AS cache_saved,
    avg(latency_ms) FILTER (WHERE json_array_length(tiers) > 0) AS latency_avg,
    coalesce(sum(TRY_CAST(json_extract_string(tiers, '$[#-1].input_tokens') AS BIGINT)), 0) AS final_in,
    coalesce(sum(TRY_CAST(json_extract_string(tiers, '$[#-1].output_tokens') AS BIGINT)), 0) AS final_out
"""
_TOTAL_ONLY = f"""
    list(DISTINCT json_extract_string(tiers, '$[0].model')) FILTER (WHERE {_CALL} AND json_array_length(tiers) > 0)
        AS first_models,
    list(DISTINCT json_extract_string(tiers, '$[#-1].model')) FILTER (WHERE {_CALL} AND json_array_length(tiers) > 0)
        AS last_models,
    list({{'timestamp': timestamp, 'finding': CAST(json_extract(metadata, '$.anomaly') AS VARCHAR)}}
         ORDER BY timestamp) FILTER (WHERE action = '{ANOMALY_ACTION}') AS anomalies
"""
MAX_ANOMALIES = 1000  # events listed in one report (the newest are kept)


def where_clause(since: str | None, until: str | None) -> tuple[str, list[Any]]:
    """` WHERE` on the timestamps that also leaves event records (anomalies) out: calls only."""
    where, params = filter_clause(since, until)
    return (f"{where} AND {_CALL}" if where else f" WHERE {_CALL}"), params


def iso_bound(value: str | datetime | None) -> str | None:
    """A bound as the records' timestamp text compares (ISO-8601 UTC); a bare date is that day's start."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def report(sources: Sources, *, by: str | Sequence[str] = "model", since: str | datetime | None = None,
           until: str | datetime | None = None, baseline_model: str | None = None,
           price_book: PriceBook | None = None, con: Any = None) -> Report:
    """Cost, calls, acceptance and savings per group of the audit records in `sources` (JSONL paths or
    globs, SQLite databases, postgresql:// URLs, or a list of them), read through DuckDB.

    `by` is one group key or several (`"user"`, `["day", "model"]`, a metadata key such as `"feature"`);
    `since`/`until` bound the records' timestamps (inclusive). `con`: an open connection from
    `open_audit(sources)`, to run several reports over one set of attached sources.
    """
    keys = (by,) if isinstance(by, str) else tuple(by)
    if not keys:
        raise ConfigurationError("by needs at least one group key, e.g. 'model', 'user', 'day' or 'feature'")
    expressions = [group_expression(k) for k in keys]
    owned = con is None
    con = open_audit(sources) if con is None else con
    try:
        low, high = iso_bound(since), iso_bound(until)
        where, params = filter_clause(low, high)
        groups = ", ".join(f"coalesce(CAST({e} AS VARCHAR), '{NONE_LABEL}') AS g{i}"
                           for i, e in enumerate(expressions))
        names = ", ".join(f"g{i}" for i in range(len(keys)))
        found = con.execute(f"SELECT GROUPING({names}) = 0 AS grouped, {groups}, {_AGGREGATES}, {_TOTAL_ONLY} "
                            f"FROM audit{where} GROUP BY GROUPING SETS (({names}), ())", params).fetchall()
    finally:
        if owned:
            con.close()
    width = len(keys)
    total = next(r for r in found if not r[0])
    first_models, last_models, events = total[-3:]
    baseline = baseline_model or costliest_model({*(first_models or ()), *(last_models or ())}, price_book)
    book = price_book or PriceBook()
    built = sorted((_row(tuple(r[1:1 + width]), r[1 + width:-3], baseline, book) for r in found
                    if r[0] and r[1 + width]),  # a group of anomaly events alone has no call
                   key=lambda r: (-r.cost_usd, -r.calls, r.key))
    anomalies = tuple({"timestamp": e["timestamp"], **json.loads(e["finding"] or "{}")}
                      for e in (events or ())[-MAX_ANOMALIES:])
    listed = tuple(redact_text(s) for s in source_names(sources))
    return Report(by=keys, rows=tuple(built), total=_row(("total",), total[1 + width:-3], baseline, book),
                  baseline_model=baseline, since=low, until=high, sources=listed, anomalies=anomalies,
                  generated_at=datetime.now(UTC).isoformat(timespec="seconds"))


def _row(key: tuple[str, ...], values: Sequence[Any], baseline: str | None, book: PriceBook) -> ReportRow:
    calls, cost, tin, tout, cascaded, accepted, errors, hits, saved, latency, final_in, final_out = values
    base = baseline_cost(baseline, int(final_in), int(final_out), book)
    return ReportRow(key=key, calls=int(calls), cost_usd=float(cost), input_tokens=int(tin),
                     output_tokens=int(tout), cascaded=int(cascaded), accepted=int(accepted), errors=int(errors),
                     cache_hits=int(hits), cache_saved_usd=float(saved),
                     latency_ms_avg=None if latency is None else float(latency),
                     baseline_usd=base, savings_usd=None if base is None else base - float(cost) + float(saved))


def baseline_cost(model: str | None, input_tokens: int, output_tokens: int, book: PriceBook) -> float | None:
    """What `input_tokens` in and `output_tokens` out cost at `model` (None without a priceable model). Cost
    is linear in tokens, so a group's summed tokens price the whole group at once."""
    if model is None:
        return None
    try:
        return float(book.cost(model, Usage(input_tokens=input_tokens, output_tokens=output_tokens)))
    except (UnknownModelPriceError, ConfigurationError):
        return None


def costliest_model(models: Iterable[str], book: PriceBook | None = None) -> str | None:
    """The model with the highest output price among `models` (the default baseline: what the calls would
    have cost had every one gone to the strongest model they reached; the strongest is a cascade's last
    tier, so the first and last tiers of the calls are enough to find it)."""
    book = book or PriceBook()
    priced: list[tuple[Decimal, Decimal, str]] = []
    for model in models:
        if not model:
            continue
        try:
            rates = book.rates(model)
        except (UnknownModelPriceError, ConfigurationError):
            continue
        priced.append((rates.output, rates.input, model))
    return max(priced)[2] if priced else None


