"""The metric catalogue: every Prometheus family cascadeflow emits, with its type, unit and labels.

Units follow Prometheus' base units: dollars for money, seconds for time (`cascadeflow_latency_seconds`,
not milliseconds: Grafana, `histogram_quantile` and other exporters all expect seconds). Counters are
declared without `_total`; the client library appends it to the sample name.
"""

from __future__ import annotations

QUERIES = "cascadeflow_query"  # counter: one per finished call -> cascadeflow_query_total
COST = "cascadeflow_cost_dollars"  # counter: USD per attempt's model -> cascadeflow_cost_dollars_total
TOKENS = "cascadeflow_tokens"  # counter: tokens per attempt's model and type (input/output)
ATTEMPTS = "cascadeflow_attempts"  # counter: model attempts by tier, role and status
DRAFTER_DECISIONS = "cascadeflow_drafter_decisions"  # counter: cascade drafts accepted or escalated
DRAFTER_ACCEPTANCE = "cascadeflow_drafter_acceptance_rate"  # gauge, derived at scrape time from the above
LATENCY = "cascadeflow_latency_seconds"  # histogram: a call's wall time
QUALITY = "cascadeflow_quality_score"  # histogram: the validator's score of the returned answer (0..1)
BASELINE_COST = "cascadeflow_baseline_cost_dollars"  # counter: what the strongest tier alone would have cost
COMPARED_COST = "cascadeflow_compared_cost_dollars"  # counter: actual cost of the calls with a baseline
SAVINGS_RATIO = "cascadeflow_savings_ratio"  # gauge, derived: 1 - compared cost / baseline cost
CACHE_SAVED = "cascadeflow_cache_saved_dollars"  # counter: what cache hits would have cost
BUDGET_REMAINING = "cascadeflow_budget_remaining_dollars"  # gauge: the tightest budget after the last call
ANOMALIES = "cascadeflow_anomalies"  # counter: anomalies an AnomalyDetector reported, by signal
ALERTS = "cascadeflow_alerts"  # counter: alerts an AlertConfig fired, by rule

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
QUALITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
