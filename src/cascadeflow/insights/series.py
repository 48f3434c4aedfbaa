"""Synthetic LLM cost series with labelled incidents, for measuring anomaly detectors.

A series is a run of fixed buckets (default 15 minutes) of one application's LLM traffic: calls follow a
business-hours daily cycle, quieter weekends and steady growth, with Poisson noise; each call is a cascade
whose draft escalates to the verifier with a noisy share; cost per call varies with prompt length
(log-normal); latency is the mean of log-normal call latencies. After a warm-up, incidents are injected,
none overlapping:

- `spike`: a runaway loop multiplies calls (and so cost) 4-8x for 1-3 buckets;
- `level_shift`: cost per call doubles or triples for a day (a prompt or model change);
- `drift`: cost per call climbs linearly to 2.5-4x over 12 hours, then stays for 6 hours (a growing context);
- `verifier_jump`: the escalation share jumps by 0.25-0.4 for a day (a degraded drafter).

Every parameter is drawn from the random seed, so a benchmark is reproducible and can be rerun with others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("spike", "level_shift", "drift", "verifier_jump")


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    kind: str
    start: int  # first affected bucket
    end: int  # last affected bucket


@dataclass(slots=True, kw_only=True)
class CostSeries:
    """Per-bucket signals of one simulated application and the incidents injected into it."""

    bucket_minutes: int
    cost: np.ndarray
    calls: np.ndarray
    verifier_share: np.ndarray
    latency_ms: np.ndarray
    incidents: list[Incident] = field(default_factory=list)
    warmup: int = 0

    @property
    def weeks(self) -> float:
        return (len(self.cost) - self.warmup) * self.bucket_minutes / (7 * 24 * 60)

    def signals(self, i: int) -> dict[str, float]:
        """The values an AnomalyDetector would see for bucket i (no share or latency without calls)."""
        out = {"cost_rate": float(self.cost[i]), "call_rate": float(self.calls[i])}
        if self.calls[i] > 0:
            out["cost_per_call"] = float(self.cost[i] / self.calls[i])
            out["verifier_share"] = float(self.verifier_share[i])
            out["latency"] = float(self.latency_ms[i])
        return out


def _traffic(rng: np.random.Generator, n: int, per_day: int, calls_per_hour: float) -> np.ndarray:
    t = np.arange(n)
    hour = (t % per_day) * 24.0 / per_day
    day = (t // per_day) % 7
    daily = 0.35 + 0.65 * np.exp(-0.5 * ((hour - rng.uniform(12, 16)) / 3.5) ** 2)  # business-hours peak
    weekly = np.where(day >= 5, rng.uniform(0.4, 0.7), 1.0)
    growth = (1.0 + rng.uniform(0.0, 0.3)) ** (t / (30 * per_day))  # up to 30% a month
    return calls_per_hour * 24.0 / per_day * daily * weekly * growth


def _incidents(rng: np.random.Generator, n: int, per_day: int, warmup: int, count: int) -> list[Incident]:
    out: list[Incident] = []
    gap = per_day  # at least a quiet day between incidents
    attempts = 0
    while len(out) < count and attempts < 1000:
        attempts += 1
        kind = KINDS[len(out) % len(KINDS)]
        length = {"spike": int(rng.integers(1, 4)), "level_shift": per_day, "drift": per_day * 3 // 4,
                  "verifier_jump": per_day}[kind]
        start = int(rng.integers(warmup, n - length - 1))
        if all(start > i.end + gap or start + length + gap < i.start for i in out):
            out.append(Incident(kind=kind, start=start, end=start + length - 1))
    return sorted(out, key=lambda i: i.start)


def generate(seed: int, *, weeks: int = 8, bucket_minutes: int = 15, incidents: int = 8,
             warmup_days: int = 7) -> CostSeries:
    """One series of `weeks` weeks with `incidents` incidents after `warmup_days` of normal traffic."""
    rng = np.random.default_rng(seed)
    per_day = 24 * 60 // bucket_minutes
    n = weeks * 7 * per_day
    warmup = warmup_days * per_day
    expected = _traffic(rng, n, per_day, calls_per_hour=float(rng.choice([60, 300, 1500])))
    share = np.full(n, rng.uniform(0.15, 0.35))
    cost_factor = np.ones(n)
    planned = _incidents(rng, n, per_day, warmup, incidents)
    for incident in planned:
        span = slice(incident.start, incident.end + 1)
        if incident.kind == "spike":
            expected[span] *= rng.uniform(4, 8)
        elif incident.kind == "level_shift":
            cost_factor[span] *= rng.uniform(2.0, 3.0)
        elif incident.kind == "drift":
            ramp = incident.end - incident.start + 1
            top = rng.uniform(2.5, 4.0)
            cost_factor[span] *= np.linspace(1.0, top, ramp)
            cost_factor[incident.end + 1:incident.end + 1 + per_day // 4] *= top
        else:
            share[span] = np.minimum(share[span] + rng.uniform(0.25, 0.4), 0.95)
    calls = rng.poisson(expected)
    noisy_share = np.clip(share + rng.normal(0, 0.02, n), 0.01, 0.99)
    escalated = rng.binomial(calls, noisy_share)
    draft_cost, verifier_cost = rng.uniform(0.0001, 0.0005), rng.uniform(0.003, 0.01)
    # summed log-normal per-call costs, approximated by their mean and spread for each bucket
    per_call = np.exp(rng.normal(0, 0.5, n) / np.sqrt(np.maximum(calls, 1)))
    cost = (calls * draft_cost + escalated * verifier_cost) * cost_factor * per_call
    latency = np.where(calls > 0, rng.uniform(600, 1500) * (1 + noisy_share) * np.exp(
        rng.normal(0, 0.6, n) / np.sqrt(np.maximum(calls, 1))), np.nan)
    verifier = np.where(calls > 0, escalated / np.maximum(calls, 1), np.nan)
    return CostSeries(bucket_minutes=bucket_minutes, cost=cost, calls=calls.astype(float),
                      verifier_share=verifier, latency_ms=latency, incidents=planned, warmup=warmup)
