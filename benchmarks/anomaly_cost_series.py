"""Anomaly detection on synthetic LLM cost series (cascadeflow.insights.series): event precision, recall,
F1, detection delay and false alerts per week, for the rolling z-score baseline and AnomalyDetector's methods.

Usage: .venv/bin/python benchmarks/anomaly_cost_series.py [--series 24] [--first-seed 1000] [--methods robust,...]

Each detector watches all five signals of every bucket with one fixed configuration for every series;
an alert is a bucket in which any signal became anomalous; alerts in the warm-up week are not scored.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from cascadeflow.insights.anomaly import AnomalyDetector
from cascadeflow.insights.evaluation import EventScore, score_alerts
from cascadeflow.insights.series import KINDS, CostSeries, generate

GRACE_BUCKETS = 8  # two hours after an incident ends (15-minute buckets)
CONFIGS = {  # the baseline as first described (no cool-down), then AnomalyDetector's methods with its defaults
    "zscore": {"method": "zscore", "window_size": 100, "std_threshold": 3.0, "cooldown": 0},
    "agreement": {"method": "agreement"},
    "robust": {"method": "robust"},
    "novelty": {"method": "novelty"},
}


def alerts_of(series: CostSeries, **config: object) -> list[int]:
    detector = AnomalyDetector(**config)
    alerts = []
    for i in range(len(series.cost)):
        fired = [detector.observe(signal, value, at=str(i)) for signal, value in series.signals(i).items()]
        if any(fired) and i >= series.warmup:
            alerts.append(i)
    return alerts


def evaluate(config: dict[str, object], seeds: range) -> tuple[EventScore, dict[str, EventScore]]:
    overall = EventScore(incidents=0, detected=0, alerts=0, false_alerts=0, weeks=0.0, delays=())
    by_kind = {kind: EventScore(incidents=0, detected=0, alerts=0, false_alerts=0, weeks=0.0, delays=())
               for kind in KINDS}
    for seed in seeds:
        series = generate(seed)
        alerts = alerts_of(series, **config)
        overall += score_alerts(alerts, series.incidents, weeks=series.weeks, grace=GRACE_BUCKETS)
        for kind in KINDS:
            chosen = [inc for inc in series.incidents if inc.kind == kind]
            found = score_alerts(alerts, chosen, weeks=0.0, grace=GRACE_BUCKETS)
            by_kind[kind] += EventScore(incidents=found.incidents, detected=found.detected, alerts=0,
                                        false_alerts=0, weeks=0.0, delays=found.delays)
    return overall, by_kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=24)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--methods", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    args = parser.parse_args(argv)
    logging.getLogger("cascadeflow.insights.anomaly").setLevel(logging.ERROR)  # each alert is logged: quiet
    seeds = range(args.first_seed, args.first_seed + args.series)
    print(f"{args.series} series x 8 weeks, 15-minute buckets, 8 incidents each; grace {GRACE_BUCKETS} buckets")
    print(f"{'detector':<30} {'precision':>9} {'recall':>7} {'F1':>6} {'false/wk':>9} {'delay(min)':>10}  "
          f"recall by kind ({', '.join(KINDS)})  seconds")
    for name in args.methods.split(","):
        config = CONFIGS[name]
        started = time.perf_counter()
        overall, by_kind = evaluate(config, seeds)
        delay = overall.median_delay
        kinds = " ".join(f"{by_kind[k].recall:.2f}" for k in KINDS)
        print(f"{name:<30} {overall.precision:9.3f} {overall.recall:7.3f} {overall.f1:6.3f} "
              f"{overall.false_alerts_per_week:9.2f} {'-' if delay is None else f'{delay * 15:.0f}':>10}  "
              f"{kinds}  {time.perf_counter() - started:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
