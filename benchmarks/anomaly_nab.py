"""Score anomaly detectors on the Numenta Anomaly Benchmark with cascadeflow's NAB scorer.

Usage: .venv/bin/python benchmarks/anomaly_nab.py PATH/TO/nab [--detectors windowed_gaussian,zscore,...]
       [--half 0|1]

PATH/TO/nab holds NAB's data/ and labels/combined_windows.json (and results/final_results.json, whose
published scores are printed beside ours). Every detector runs with one set of parameters on all 58
series; the threshold is chosen per profile over the whole corpus, as NAB does. `--half` scores only the
series whose file name hashes (CRC-32) to that half: tune on one half, report the other.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from cascadeflow.insights import nab
from cascadeflow.insights.anomaly import StreamScorer, alerting_scorer
from cascadeflow.insights.scorers import ZScoreScorer


def load_corpus(root: Path) -> Iterator[tuple[str, list[float], list[tuple[int, int]]]]:
    """(name, values, windows as inclusive index pairs) for every labelled series."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    for name in sorted(windows):
        with (root / "data" / name).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        stamps = [row["timestamp"][:19] for row in rows]
        index = {stamp: i for i, stamp in enumerate(stamps)}
        spans = [(index[start[:19]], index[end[:19]]) for start, end in windows[name]]
        yield name, [float(row["value"]) for row in rows], spans


def windowed_gaussian(values: list[float]) -> list[float]:
    """NAB's Windowed Gaussian reference detector, rerun: a Gaussian fitted to up to 6,400 past points,
    refitted every 100 points once the window is full; score 1 - Q(|z|)."""
    window: list[float] = []
    pending: list[float] = []
    mean, std = 0.0, 1.0
    out = []
    for value in values:
        out.append(1.0 - 0.5 * math.erfc(abs(value - mean) / std / math.sqrt(2)) if window else 0.0)
        if len(window) < 6400:
            window.append(value)
        else:
            pending.append(value)
            if len(pending) < 100:
                continue
            window = window[100:] + pending
            pending = []
        mean, std = float(np.mean(window)), float(np.std(window)) or 1e-6
    return out


def scorer_detector(make: Callable[[], StreamScorer]) -> Callable[[list[float]], list[float]]:
    def run(values: list[float]) -> list[float]:
        scorer = make()
        # into [0, 1] without saturating; a rolling z-score is infinite after a flat stretch
        return [1.0 if math.isinf(z) else z / (1.0 + z) for z in map(scorer.score, values)]
    return run


DETECTORS: dict[str, Callable[[list[float]], list[float]]] = {
    "windowed_gaussian": windowed_gaussian,
    "zscore": scorer_detector(lambda: ZScoreScorer(window=100)),  # the baseline: 100 values, no cool-down
    # AnomalyDetector's scorers with its defaults (window 400, 3.0 sd, cool-down 100 values)
    "agreement": scorer_detector(lambda: alerting_scorer("agreement")),
    "robust": scorer_detector(lambda: alerting_scorer("robust")),
    "novelty": scorer_detector(lambda: alerting_scorer("novelty")),
}


def in_half(name: str, half: int) -> bool:
    return zlib.crc32(name.encode()) % 2 == half


def score_detector(corpus: list[tuple[str, list[float], list[tuple[int, int]]]],
                   detect: Callable[[list[float]], list[float]]) -> dict[str, tuple[float, float]]:
    """profile -> (normalised score, threshold)."""
    outputs = [(detect(values), spans) for _name, values, spans in corpus]
    total_windows = sum(len(spans) for _name, _values, spans in corpus)
    results = {}
    for profile, costs in nab.PROFILES.items():
        prepared = [nab.prepare(scores, spans, costs) for scores, spans in outputs]
        threshold, raw = nab.best_threshold(prepared, costs)
        results[profile] = (nab.normalised(raw, total_windows, costs), threshold)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab", type=Path, help="NAB directory (data/, labels/, results/)")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--half", type=int, choices=(0, 1), help="only the series of this half")
    args = parser.parse_args(argv)
    corpus = [c for c in load_corpus(args.nab) if args.half is None or in_half(c[0], args.half)]
    published = {}
    final = args.nab / "results" / "final_results.json"
    if final.exists():
        published = json.loads(final.read_text())
    print(f"{len(corpus)} series, {sum(len(s) for _n, _v, s in corpus)} windows")
    print(f"{'detector':<20} {'standard':>9} {'low FP':>9} {'low FN':>9}  threshold(std)  seconds  published(std)")
    for name in args.detectors.split(","):
        started = time.perf_counter()
        results = score_detector(corpus, DETECTORS[name])
        elapsed = time.perf_counter() - started
        ref = None if args.half is not None else published.get({"windowed_gaussian": "windowedGaussian"}.get(name, name), {}).get("standard")
        print(f"{name:<20} {results['standard'][0]:9.1f} {results['reward_low_FP_rate'][0]:9.1f} "
              f"{results['reward_low_FN_rate'][0]:9.1f}  {results['standard'][1]:14.6f} {elapsed:8.1f}  "
              f"{'' if ref is None else f'{ref:.1f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
