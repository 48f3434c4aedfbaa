"""Backtest CostForecaster on the daily totals of synthetic LLM cost series (incidents included).

Usage: .venv/bin/python benchmarks/forecast_backtest.py [--series 24] [--horizon 7]

Rolling origin: from day 28, every 7 days, forecast the next `horizon` days from the days before; report
the mean absolute percentage error of the daily forecasts and the share of actual days inside the 80%
interval (the target: 75-85%).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

import numpy as np

from cascadeflow.insights.forecast import CostForecaster
from cascadeflow.insights.series import generate


def daily(seed: int) -> list[float]:
    series = generate(seed, weeks=16)
    per_day = 24 * 60 // series.bucket_minutes
    return [float(series.cost[i:i + per_day].sum()) for i in range(0, len(series.cost), per_day)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=24)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--first-seed", type=int, default=2000)
    args = parser.parse_args(argv)
    forecaster = CostForecaster(interval=0.8)
    errors, inside = [], []
    start = date(2026, 1, 5)
    for seed in range(args.first_seed, args.first_seed + args.series):
        costs = daily(seed)
        for origin in range(28, len(costs) - args.horizon + 1, 7):
            history = {start + timedelta(d): costs[d] for d in range(origin)}
            forecast = forecaster.predict(historical_data=history, days_ahead=args.horizon)
            for h, day in enumerate(forecast.days):
                actual = costs[origin + h]
                errors.append(abs(day.predicted_cost - actual) / actual)
                inside.append(day.lower_bound <= actual <= day.upper_bound)
    print(f"{args.series} series x 16 weeks, rolling origin every 7 days, horizon {args.horizon} days: "
          f"{len(errors)} forecast days")
    print(f"MAPE {100 * np.mean(errors):.1f}%  median APE {100 * np.median(errors):.1f}%  "
          f"inside the 80% interval {100 * np.mean(inside):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
