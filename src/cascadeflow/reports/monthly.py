"""The monthly report: a month's totals by model, user, feature and task type, the cost per day, and
recommendations read off the records (reliable drafters, tiers that never accept, cost drivers, repeats a
cache would have answered, the budget)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.pricing import PriceBook
from cascadeflow.reports.query import Report, Sources, report, where_clause
from cascadeflow.reports.render import money, share
from cascadeflow.reports.sources import open_audit


@dataclass(frozen=True, slots=True)
class RecommendationRules:
    """When a finding becomes a recommendation. `min_calls`: the fewest cascaded calls a drafter (per task
    type) needs before its acceptance is judged."""

    min_calls: int = 50
    reliable_acceptance: float = 0.9  # drafts accepted at least this often: the verifier is rarely needed
    useless_acceptance: float = 0.05  # at most this often: the tier mostly costs a draft and a delay
    driver_share: float = 0.3  # a user or feature with this share of the cost (and twice its even share) is named
    budget_warning: float = 0.9  # cost above this share of the budget


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    kind: str  # reliable_drafter | useless_tier | cost_driver | cache_opportunity | budget | escalation
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthlyReport:
    month: str
    by_model: Report
    by_user: Report
    by_feature: Report
    by_task_type: Report
    daily: Report
    recommendations: tuple[Recommendation, ...]

    def to_text(self, top: int = 5) -> str:
        t = self.by_model.total
        lines = [f"cascadeflow monthly cost report: {self.month}", "",
                 f"Total queries: {t.calls:,}", f"Total cost: {money(t.cost_usd)}",
                 f"Avg cost/query: ${t.cost_usd / t.calls if t.calls else 0.0:.6f}",
                 f"Draft acceptance: {share(t.acceptance)}",
                 f"Cache hits: {t.cache_hits:,} (saved {money(t.cache_saved_usd)})"]
        if t.savings_usd is not None:
            lines.append(f"Baseline ({self.by_model.baseline_model}): {money(t.baseline_usd)}; "
                         f"savings {money(t.savings_usd)} ({share(t.savings_pct)})")
        for title, part in (("model", self.by_model), ("user", self.by_user), ("feature", self.by_feature),
                            ("task type", self.by_task_type)):
            lines += ["", f"Top cost by {title}:"]
            lines += [f"  {' / '.join(r.key)}: {money(r.cost_usd)} over {r.calls:,} calls" for r in part.rows[:top]]
        lines += ["", "Recommendations:"]
        lines += [f"  - {r.message}" for r in self.recommendations] or ["  - none: no finding crossed its rule"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "by_model": self.by_model.to_dict(), "by_user": self.by_user.to_dict(),
                "by_feature": self.by_feature.to_dict(), "by_task_type": self.by_task_type.to_dict(),
                "daily": self.daily.to_dict(),
                "recommendations": [{"kind": r.kind, "message": r.message, "figures": r.figures}
                                    for r in self.recommendations]}


def month_bounds(month: str) -> tuple[str, str]:
    """`2026-11` -> its first and last millisecond, as the records' timestamps compare (both inclusive)."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ConfigurationError(f"month must be YYYY-MM, got {month!r}") from None
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return f"{first.isoformat()}T00:00:00.000Z", f"{(following - timedelta(days=1)).isoformat()}T23:59:59.999Z"


def monthly_report(sources: Sources, month: str, *, feature_key: str = "feature", task_key: str = "task_type",
                   baseline_model: str | None = None, budget: float | None = None,
                   rules: RecommendationRules | None = None, price_book: PriceBook | None = None) -> MonthlyReport:
    """The report of `month` (YYYY-MM, UTC) over the audit records in `sources`; `budget` (USD for the
    month) adds a warning near it."""
    since, until = month_bounds(month)
    rules = rules or RecommendationRules()
    con = open_audit(sources)
    try:
        def part(by: str) -> Report:
            return report(sources, by=by, since=since, until=until, baseline_model=baseline_model,
                          price_book=price_book, con=con)

        by_model = part("model")
        baseline = by_model.baseline_model
        parts = {name: report(sources, by=name, since=since, until=until, baseline_model=baseline,
                              price_book=price_book, con=con)
                 for name in ("user", feature_key, task_key, "day")}
        recs = recommendations(con, since, until, task_key, rules,
                               (parts["user"], parts[feature_key]), budget)
    finally:
        con.close()
    return MonthlyReport(month=month, by_model=by_model, by_user=parts["user"], by_feature=parts[feature_key],
                         by_task_type=parts[task_key], daily=parts["day"], recommendations=tuple(recs))


def recommendations(con: Any, since: str, until: str, task_key: str, rules: RecommendationRules,
                    drivers: Sequence[Report], budget: float | None) -> list[Recommendation]:
    where, params = where_clause(since, until)
    found = drafter_findings(con, where, params, task_key, rules)
    for part in drivers:
        found += cost_drivers(part, rules)
    found += cache_findings(con, where, params)
    total = drivers[0].total
    if budget is not None and budget > 0 and total.cost_usd > rules.budget_warning * budget:
        found.append(Recommendation(kind="budget",
                                    message=f"cost {money(total.cost_usd)} is "
                                            f"{total.cost_usd / budget:.0%} of the {money(budget)} "
                                            "budget: review the costliest users and features",
                                    figures={"cost_usd": total.cost_usd, "budget": budget}))
    return found


def drafter_findings(con: Any, where: str, params: list[Any], task_key: str,
                     rules: RecommendationRules) -> list[Recommendation]:
    """Per task type and drafting model (the first tier of cascaded calls): reliable drafters, and tiers
    whose drafts are (almost) never accepted, with what their rejected drafts cost."""
    rows = con.execute(f"""
        SELECT coalesce(json_extract_string(metadata, '$."{task_key}"'), '(none)') AS task,
               json_extract_string(tiers, '$[0].model') AS drafter, count(*) AS calls,
               count(*) FILTER (WHERE action = 'accept') AS accepted,
               coalesce(sum(TRY_CAST(json_extract_string(tiers, '$[0].cost_usd') AS DOUBLE))
                        FILTER (WHERE action = 'escalate'), 0) AS rejected_cost,
               coalesce(sum(cost_usd) FILTER (WHERE action = 'escalate'), 0) AS escalated_cost
        FROM audit{where} AND action IN ('accept', 'escalate') GROUP BY ALL""", params).fetchall()
    out: list[Recommendation] = []
    per_drafter: dict[str, list[float]] = {}
    for task, drafter, calls, accepted, rejected_cost, escalated_cost in rows:
        if drafter is None:
            continue
        totals = per_drafter.setdefault(drafter, [0, 0, 0.0])
        totals[0] += calls
        totals[1] += accepted
        totals[2] += rejected_cost
        rate = accepted / calls
        if calls >= rules.min_calls and rate >= rules.reliable_acceptance and task != "(none)":
            out.append(Recommendation(kind="reliable_drafter",
                                      message=f"{drafter} drafts for task type {task} are "
                                              f"accepted {rate:.0%} of the time ({calls:,} "
                                              f"calls): its {calls - accepted:,} escalations cost "
                                              f"{money(escalated_cost)}; a route sending {task} "
                                              f"to {drafter} alone would save most of that",
                                      figures={"task_type": task, "model": drafter, "calls": calls,
                                               "acceptance": rate, "escalated_cost_usd": escalated_cost}))
    for drafter, (calls, accepted, rejected_cost) in sorted(per_drafter.items()):
        rate = accepted / calls
        if calls >= rules.min_calls and rate <= rules.useless_acceptance:
            out.append(Recommendation(kind="useless_tier",
                                      message=f"{drafter} drafted {int(calls):,} calls and {rate:.0%} were "
                                              f"accepted: its rejected drafts cost {money(rejected_cost)} "
                                              "and a delay; drop the tier or use a stronger drafter",
                                      figures={"model": drafter, "calls": int(calls), "acceptance": rate,
                                               "rejected_cost_usd": rejected_cost}))
    return out


def cost_drivers(part: Report, rules: RecommendationRules) -> list[Recommendation]:
    total = part.total.cost_usd
    named = [r for r in part.rows if r.key[0] != "(none)"]
    if total <= 0 or len(named) < 2:
        return []
    by = part.by[0]
    return [Recommendation(kind="cost_driver",
                           message=f"{by} {r.key[0]} drove {r.cost_usd / total:.0%} of the "
                                   f"cost ({money(r.cost_usd)} over {r.calls:,} calls)",
                           figures={by: r.key[0], "cost_usd": r.cost_usd, "share": r.cost_usd / total})
            for r in named if r.cost_usd / total >= max(rules.driver_share, 2 / len(named))]


def cache_findings(con: Any, where: str, params: list[Any]) -> list[Recommendation]:
    """Calls a cache in observe mode would have answered, and (with recorded prompts) repeated prompts."""
    observed, observed_cost = con.execute(
        "SELECT count(*), coalesce(sum(cost_usd), 0) FROM audit" + where +
        " AND json_extract_string(metadata, '$.cache.would_hit') = 'true'", params).fetchone()
    out: list[Recommendation] = []
    if observed:
        out.append(Recommendation(kind="cache_opportunity",
                                  message=f"{observed:,} calls would have been cache hits (observe "
                                          f"mode): serving them would have saved {money(observed_cost)}",
                                  figures={"calls": observed, "cost_usd": observed_cost}))
    repeats, repeat_cost = con.execute(
        "SELECT coalesce(sum(n - 1), 0), coalesce(sum(cost * (n - 1) / n), 0) FROM (SELECT count(*) AS n, "
        "sum(cost_usd) AS cost FROM audit" + where + " AND prompt IS NOT NULL AND "
        "coalesce(json_extract_string(metadata, '$.cache.hit'), 'false') <> 'true' "
        "GROUP BY md5(CAST(prompt AS VARCHAR)) HAVING count(*) > 1)", params).fetchone()
    if repeats:
        out.append(Recommendation(kind="cache_opportunity",
                                  message=f"{int(repeats):,} calls repeated an earlier prompt "
                                          "word for word: an exact cache would have answered "
                                          f"them and saved about {money(repeat_cost)}",
                                  figures={"calls": int(repeats), "cost_usd": repeat_cost}))
    return out
