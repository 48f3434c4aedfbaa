"""`CostForecaster`: daily LLM cost ahead, with weekday seasonality, growth and an interval.

The model is multiplicative: cost(day) = level x growth^day x weekday factor x noise. Weekday factors are
medians of each weekday's cost over its trailing seven-day mean; growth and level come from a least-squares
line through the log of the de-seasonalised costs of the last `fit_days` days; the noise is the spread of
that line's residuals, widened with the distance from the data. How many of those spreads the interval
spans is not taken from the normal distribution but from a backtest on the history itself: the model is
refitted at every earlier day and its errors on the days after, in units of its own spread, give the
quantiles of the interval (the normal ones while the history is too short for enough errors).
`growth_rate` replaces the fitted growth.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np

from cascadeflow.errors import ConfigurationError

MIN_DAYS = 14  # two of each weekday before a weekday factor means anything
MIN_BACKTEST_ERRORS = 30  # fewer backtested errors than this and the interval uses normal quantiles
BACKTEST_ORIGINS = 90  # refits on the latest days only: a long history costs no more than a quarter's


@dataclass(frozen=True, slots=True, kw_only=True)
class DayForecast:
    day: date
    predicted_cost: float
    lower_bound: float
    upper_bound: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    """Total cost over the forecast days and its bounds (each day's bounds summed), and the days."""

    predicted_cost: float
    lower_bound: float
    upper_bound: float
    interval: float
    daily_growth: float
    days: tuple[DayForecast, ...]


def daily_costs(historical_data: Any) -> dict[date, float]:
    """Cost per UTC day from audit records (AuditRecord objects or the dicts the log reader yields), a
    {date: cost} mapping, (date, cost) pairs, or an agent's `get_analytics()` (its `daily_costs`)."""
    history = getattr(historical_data, "daily_costs", None)  # an agent's analytics snapshot
    if isinstance(history, Mapping):
        historical_data = history
    if isinstance(historical_data, Mapping):
        pairs: Iterable[Any] = historical_data.items()
    elif isinstance(historical_data, Iterable) and not isinstance(historical_data, (str, bytes)):
        pairs = historical_data
    else:
        raise ConfigurationError(
            "historical_data must be audit records, a {date: cost} mapping, (date, cost) pairs or an agent's "
            f"get_analytics() (got {type(historical_data).__name__})")
    out: dict[date, float] = defaultdict(float)
    for item in pairs:
        if isinstance(item, Mapping):  # a record as the log reader yields it
            day, cost = item.get("timestamp"), item.get("cost_usd") or 0.0
        elif hasattr(item, "timestamp") and hasattr(item, "cost_usd"):
            day, cost = item.timestamp, item.cost_usd
        else:
            day, cost = item
        out[_as_date(day)] += float(cost)
    return dict(out)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        raise ConfigurationError(f"{value!r} is not a date; use ISO-8601 ('2026-06-01')") from None


class CostForecaster:
    """Forecast daily cost; `interval` is the probability each day's actual cost falls within its bounds."""

    def __init__(self, *, interval: float = 0.8, fit_days: int = 28):
        if not 0 < interval < 1:
            raise ConfigurationError(f"interval must be between 0 and 1 (0.8 for 80%), got {interval!r}")
        if fit_days < MIN_DAYS:
            raise ConfigurationError(f"fit_days must be at least {MIN_DAYS}, got {fit_days!r}")
        self.interval = interval
        self.fit_days = fit_days

    def predict(self, *, historical_data: Any, days_ahead: int = 30, growth_rate: float | None = None) -> Forecast:
        """Forecast `days_ahead` days after the last day of history. `growth_rate` is the expected cost
        ratio per 30 days (1.2: +20% a month) instead of the growth fitted to the history."""
        if not isinstance(days_ahead, int) or days_ahead < 1:
            raise ConfigurationError(f"days_ahead must be a positive int, got {days_ahead!r}")
        if growth_rate is not None and growth_rate <= 0:
            raise ConfigurationError(f"growth_rate is a ratio per 30 days (1.2 for +20%), got {growth_rate!r}")
        costs = daily_costs(historical_data)
        if len(costs) < MIN_DAYS:
            raise ConfigurationError(f"a forecast needs at least {MIN_DAYS} days of history, got {len(costs)}")
        first, last = min(costs), max(costs)
        days = [first + timedelta(d) for d in range((last - first).days + 1)]
        values = np.array([costs.get(d, 0.0) for d in days])
        weekdays = np.array([d.weekday() for d in days])
        fit = self._fit(weekdays, values)
        if growth_rate is not None:
            # a given growth grows from the fitted level of the last day of history, not from the first day
            last_day = len(days) - 1
            slope = math.log(growth_rate) / 30
            intercept = fit.intercept + (fit.slope - slope) * last_day
            fit = replace(fit, intercept=intercept, slope=slope)
        low, high = self._quantiles(weekdays, values, days_ahead)
        out = []
        for h in range(1, days_ahead + 1):
            day = last + timedelta(h)
            center = fit.center(len(days) - 1 + h, day.weekday())
            spread = fit.spread(h)
            # the median of a log-normal cost is exp(center); its mean is higher by exp(sigma^2 / 2)
            out.append(DayForecast(day=day, predicted_cost=math.exp(center + fit.sigma * fit.sigma / 2),
                                   lower_bound=math.exp(center + low * spread),
                                   upper_bound=math.exp(center + high * spread)))
        return Forecast(predicted_cost=sum(d.predicted_cost for d in out),
                        lower_bound=sum(d.lower_bound for d in out),
                        upper_bound=sum(d.upper_bound for d in out), interval=self.interval,
                        daily_growth=math.exp(fit.slope), days=tuple(out))

    def _fit(self, weekdays: np.ndarray, values: np.ndarray) -> _Fit:
        factors = weekday_factors(weekdays, values)
        start = max(len(values) - self.fit_days, 0)
        x = np.arange(start, len(values))
        deseasoned = np.log(np.maximum(values[start:] / factors[weekdays[start:]], 1e-9))
        slope, intercept = np.polyfit(x, deseasoned, 1)
        sigma = float(np.std(deseasoned - (intercept + slope * x), ddof=2))
        return _Fit(intercept=float(intercept), slope=float(slope), factors=factors, sigma=sigma,
                    points=len(x))

    def _quantiles(self, weekdays: np.ndarray, values: np.ndarray, days_ahead: int) -> tuple[float, float]:
        """Lower and upper quantile of the backtested errors, in units of the model's spread at each
        error's horizon; the normal quantiles while there are too few errors."""
        errors = []
        for origin in range(max(MIN_DAYS, len(values) - BACKTEST_ORIGINS), len(values)):
            fit = self._fit(weekdays[:origin], values[:origin])
            if fit.sigma == 0:
                continue
            for h in range(1, min(days_ahead, len(values) - origin) + 1):
                actual = values[origin + h - 1]
                if actual > 0:
                    center = fit.center(origin + h - 1, int(weekdays[origin + h - 1]))
                    errors.append((math.log(actual) - center) / fit.spread(h))
        tail = (1 - self.interval) / 2
        if len(errors) < MIN_BACKTEST_ERRORS:
            z = NormalDist().inv_cdf(1 - tail)
            return -z, z
        low, high = np.quantile(errors, [tail, 1 - tail])
        return float(low), float(high)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Fit:
    """One fit of the model: log cost = intercept + slope x day + log weekday factor, spread sigma."""

    intercept: float
    slope: float
    factors: np.ndarray
    sigma: float
    points: int  # days the line was fitted to

    def center(self, index: int, weekday: int) -> float:
        return self.intercept + self.slope * index + math.log(self.factors[weekday])

    def spread(self, horizon: int) -> float:
        """The spread of the log cost `horizon` days after the last fitted day."""
        return self.sigma * math.sqrt(1 + horizon / self.points)


def weekday_factors(weekdays: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Median ratio of each weekday's cost to its trailing seven-day mean (1.0 where unknown)."""
    ratios: dict[int, list[float]] = defaultdict(list)
    for i in range(6, len(values)):
        mean = values[i - 6:i + 1].mean()
        if mean > 0:
            ratios[int(weekdays[i])].append(values[i] / mean)
    factors = np.array([float(np.median(ratios[w])) if ratios[w] else 1.0 for w in range(7)])
    factors = np.maximum(factors, 1e-6)
    return factors / factors.mean()
