"""Does the complexity pre-router save cost at equal quality? The replay targets with and without it.

Usage: .venv/bin/python benchmarks/replay_complexity.py [--data ../shared/data/replay] [--only NAME]
       [--json FILE]

Same datasets, models, folds and target qualities as benchmarks/replay_targets.py. Per fold, on the
calibration part only: the pre-router thresholds (the complexity scores that send the top 10%, 25% and 50%
of calibration queries straight to the strong tier, plus the library default 0.75), the cascade threshold
for each (the replay rule: cheapest threshold reaching the target share of strong-only quality), and which
of "off" / the thresholds to use (cheapest reaching the target, else the highest quality). Every number is
a real CascadeAgent run (with `complexity_router=ComplexityRouter(c)`) on the held-out part; "pooled"
puts each query's held-out result together once. Quality differences against "off" are paired per query,
with +-2 standard errors of the mean difference as the sampling noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from replay_targets import MODELS, TARGETS, _folds
from sklearn.metrics import roc_auc_score

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.messages import build_request
from cascadeflow.replay.converters import convert
from cascadeflow.replay.engine import ReplaySetup, fit_calibration, replay, with_calibration
from cascadeflow.replay.provider import ReplayProvider
from cascadeflow.replay.report import baselines, choose_threshold, policy_point, reference
from cascadeflow.replay.study import sweep_points
from cascadeflow.routing.complexity import ComplexityRouter, estimate_complexity
from cascadeflow.runtime.pipeline import Ledger, Runtime

ROOT = Path(__file__).resolve().parent.parent
SHARES = (0.10, 0.25, 0.50)  # shares of calibration queries sent straight to the strong tier
DEFAULT_THRESHOLD = 0.75  # ComplexityRouter's default


@dataclass(frozen=True, slots=True)
class PreRoutedSetup(ReplaySetup):
    """A replay setup whose agent also runs the complexity pre-router (None: off, the library default)."""

    complexity_threshold: float | None = None

    def agent(self, ledger: Ledger | None = None) -> CascadeAgent:
        provider = ReplayProvider(self.dataset)
        runtime = Runtime(price_book=self.price_book, sinks=self.sinks, resolve_provider=provider.resolver(),
                          ledger=ledger)
        router = None if self.complexity_threshold is None else ComplexityRouter(self.complexity_threshold)
        return CascadeAgent(models=[self.dataset.models[a] for a in self.models], quality_config=self.quality,
                            runtime=runtime, complexity_router=router, name=f"replay:{self.dataset.name}")


def complexity_scores(dataset) -> list[float]:  # type: ignore[no-untyped-def]
    return [estimate_complexity(build_request(list(q.messages), model="any")).score for q in dataset.queries]


def pre_router_grid(train) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    """Pre-router thresholds from the calibration part's complexity scores (never the held-out part)."""
    scores = np.array(complexity_scores(train))
    grid: dict[str, float | None] = {"off": None}
    for share in SHARES:
        c = float(min(1.0, max(0.001, np.quantile(scores, 1 - share))))
        grid[f"top {share:.0%} direct"] = round(c, 4)
    grid["default 0.75"] = DEFAULT_THRESHOLD
    return grid


async def choose_on_calibration(setup: PreRoutedSetup, target: float) -> tuple[float, dict]:
    """The cascade threshold for `target` on calibration data, and the calibration point it gives."""
    ref = reference(setup.dataset, setup.models[0], setup.models[-1], setup.price_book)
    points, _ = await sweep_points(setup, ref)
    chosen = choose_threshold(points, target)
    reached = chosen is not None
    if chosen is None:
        chosen = max(points, key=lambda p: (p.quality, -p.cost_usd))
    return float(chosen.threshold), {"reached": reached, "cost": chosen.cost_usd, "quality": chosen.quality,
                                     "threshold": chosen.threshold}


async def run_fold(train, test, models, target: float, fit: bool) -> dict:  # type: ignore[no-untyped-def]
    """Per pre-router setting: outcomes on `test` with the cascade threshold re-chosen for it on `train`,
    and with the "off" threshold kept (the pre-router simply added to the tuned cascade)."""
    cal = PreRoutedSetup.build(train, models, QualityConfig())
    held = PreRoutedSetup.build(test, models, QualityConfig())
    if fit:
        fitted = await fit_calibration(cal)
        cal, held = with_calibration(cal, fitted), with_calibration(held, fitted)
    out: dict = {"retuned": {}, "same_t": {}, "cal": {}}
    off_t = None
    for name, c in pre_router_grid(train).items():
        t, cal_point = await choose_on_calibration(_with_c(cal, c), target)
        off_t = t if c is None else off_t
        out["cal"][name] = {**cal_point, "complexity_threshold": c}
        out["retuned"][name] = await replay(_with_c(held, c).with_threshold(t))
        out["same_t"][name] = await replay(_with_c(held, c).with_threshold(off_t))
    reaching = [n for n, p in out["cal"].items() if p["reached"]]
    if reaching:
        out["chosen"] = min(reaching, key=lambda n: (out["cal"][n]["cost"], n != "off"))
    else:
        out["chosen"] = max(out["cal"], key=lambda n: (out["cal"][n]["quality"], -out["cal"][n]["cost"]))
    return out


def _with_c(setup: PreRoutedSetup, c: float | None) -> PreRoutedSetup:
    from dataclasses import replace

    return replace(setup, complexity_threshold=c)


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean per-query quality difference a - b and two standard errors of it."""
    diff = np.array(a) - np.array(b)
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), 2 * se


def summarize(name: str, ref, outcomes: list, off: list) -> dict:  # type: ignore[no-untyped-def]
    """The operating point, the share sent direct, the paired quality change against "off", and the null
    a pre-router must beat: the same share sent straight to the strong tier at random (expected values)."""
    p = policy_point(name, ref, outcomes, threshold=None).to_dict()
    share = sum(1 for o in outcomes if o.called == (ref.strong,)) / len(outcomes)
    dq, noise = paired([o.quality for o in outcomes], [o.quality for o in off])
    rnd_q = [(1 - share) * o.quality + share * q for o, q in zip(off, ref.strong_quality, strict=True)]
    rnd_cost = (1 - share) * sum(float(o.cost_usd) for o in off) + share * float(ref.strong_total)
    dq_rnd, noise_rnd = paired([o.quality for o in outcomes], rnd_q)
    p.update(direct_fraction=share, dq_vs_off=dq, noise_2se=noise,
             random_direct={"cost_fraction": rnd_cost / float(ref.strong_total), "quality": sum(rnd_q) / len(rnd_q),
                            "dq": dq_rnd, "noise_2se": noise_rnd})
    return p


def _line(name: str, p: dict, off: dict) -> str:
    line = (f"  {name:<22} direct {p['direct_fraction']:.3f}  strong calls {p['strong_call_fraction']:.3f}  "
            f"cost frac {p['cost_fraction']:.3f} ({p['cost_fraction'] - off['cost_fraction']:+.3f})  "
            f"quality {p['quality']:.4f} ({p['dq_vs_off']:+.4f} +-{p['noise_2se']:.4f})")
    if p["direct_fraction"] > 0:
        r = p["random_direct"]
        line += (f"\n  {'':<22} same share direct at random: cost frac {r['cost_fraction']:.3f}  quality "
                 f"{r['quality']:.4f}; pre-router vs random {r['dq']:+.4f} +-{r['noise_2se']:.4f}")
    return line


def verdict(p: dict, off: dict) -> str:
    cheaper = p["cost_fraction"] < off["cost_fraction"]
    equal = p["dq_vs_off"] >= -p["noise_2se"] if p["noise_2se"] > 0 else p["dq_vs_off"] >= 0
    if cheaper and equal:
        return "saves cost at equal quality"
    return ("cheaper but loses quality beyond the noise" if cheaper else
            "no cost saving" + ("" if p["dq_vs_off"] <= p["noise_2se"] else " (buys quality beyond the noise)"))


def pool(folds, results: list[dict], kind: str) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """Per setting, every held-out outcome once (fold order); "chosen" takes each fold's calibration pick."""
    names = list(results[0][kind])
    pooled: dict[str, list] = {n: [o for r in results for o in r[kind][n]] for n in names}
    if kind == "retuned":
        pooled["chosen on calibration"] = [o for r in results for o in r[kind][r["chosen"]]]
    return pooled


def complexity_auc(dataset, cheap: str) -> float:  # type: ignore[no-untyped-def]
    """How well the complexity score ranks the drafts that are wrong (0.5: no better than chance)."""
    wrong = [q.answers[cheap].quality < 0.5 for q in dataset.queries]
    return float(roc_auc_score(wrong, complexity_scores(dataset)))


async def run_target(name: str, spec: dict, data: Path, fits: tuple[bool, ...]) -> dict:
    dataset = convert(spec["fmt"], data / spec["path"], MODELS)
    models = list(spec["models"])[:1] + list(spec["models"])[-1:]  # the pre-router is cascade vs strongest
    folds = _folds(dataset, spec["folds"])
    setup = ReplaySetup.build(dataset, models)
    auc = complexity_auc(dataset, setup.models[0])
    out: dict = {"dataset": dataset.name, "n": len(dataset.queries), "models": models,
                 "target": spec["target"], "complexity_auc_draft_wrong": auc}
    print(f"\n## {name}: {dataset.name}, n={len(dataset.queries)}, {' -> '.join(models)}; cascade threshold "
          f"chosen for {spec['target']:.0%} of strong-only quality; complexity AUC for a wrong draft {auc:.3f}")
    started = time.perf_counter()
    for fit in fits:
        label = "calibrated" if fit else "uncalibrated"
        results = [await run_fold(train, test, models, spec["target"], fit) for train, test in folds]
        union = folds[0][1].subset([q for _, test in folds for q in test.queries], "pooled held-out")
        ref = reference(union, setup.models[0], setup.models[-1], setup.price_book)
        out[label] = {"chosen_per_fold": [r["chosen"] for r in results],
                      "calibration": [r["cal"] for r in results]}
        for kind, title in (("retuned", "cascade threshold re-chosen on calibration with the pre-router on"),
                            ("same_t", "pre-router added to the cascade as tuned without it")):
            pooled = pool(folds, results, kind)
            off = summarize("off", ref, pooled["off"], pooled["off"])
            rows = {n: summarize(n, ref, o, pooled["off"]) for n, o in pooled.items()}
            for row in rows.values():
                row["verdict"] = "baseline" if row is rows["off"] else verdict(row, off)
            out[label][kind] = rows
            print(f"{label}, {title} (pooled held-out):")
            for n, row in rows.items():
                print(_line(n, row, off) + ("" if n == "off" else f"  -> {row['verdict']}"))
            for b in baselines(ref)[:2]:
                print(f"  {b.name:<22} strong calls {b.strong_call_fraction:.3f}  cost frac {b.cost_fraction:.3f}  "
                      f"quality {b.quality:.4f}")
        print(f"  pre-router setting chosen on calibration, per fold: {out[label]['chosen_per_fold']}")
    out["frontier"] = await frontier(setup, spec["target"])
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


async def frontier(setup: ReplaySetup, target: float) -> dict:
    """In-sample check on the whole dataset, same for every setting: the cheapest cascade threshold reaching
    each quality level, without and with the pre-router, and random routing for reference."""
    ref = reference(setup.dataset, setup.models[0], setup.models[-1], setup.price_book)
    levels = sorted({0.80, 0.85, 0.90, 0.95, target, 0.98, 1.0})
    base = PreRoutedSetup.build(setup.dataset, list(setup.models), QualityConfig())
    out: dict = {"random routing": [random_cost(ref, level) for level in levels]}
    print("whole dataset, in-sample (uncalibrated): lowest cost fraction reaching each share of strong-only "
          "quality over all cascade thresholds ('-': not reached)")
    print("  " + " " * 22 + "  ".join(f"{level:>6.0%}" for level in levels))
    for name, c in pre_router_grid(setup.dataset).items():
        points, _ = await sweep_points(_with_c(base, c), ref)
        out[name] = [min((p.cost_fraction for p in points if p.quality_fraction >= level), default=None)
                     for level in levels]
    out = {"levels": levels, **{k: out[k] for k in [*list(out)[1:], "random routing"]}}
    for name, best in list(out.items())[1:]:
        print(f"  {name:<22}" + "  ".join("     -" if b is None else f"{b:6.3f}" for b in best))
    return out


def random_cost(ref, level: float) -> float:  # type: ignore[no-untyped-def]
    """Cost fraction of random routing (a share f to the strong model) reaching `level` of strong quality."""
    gap = ref.q_strong - ref.q_cheap
    f = 1.0 if gap <= 0 else min(1.0, max(0.0, (level * ref.q_strong - ref.q_cheap) / gap))
    cheap = float(sum(ref.cheap_cost)) / float(ref.strong_total)
    return (1 - f) * cheap + f


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "replay")
    parser.add_argument("--only", choices=[n for n in TARGETS if n != "zellinger-mmlu-chain"])
    parser.add_argument("--uncalibrated-only", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no replay data at {args.data}; pass --data", file=sys.stderr)
        return 2
    fits = (False,) if args.uncalibrated_only else (False, True)
    results = {}
    for name, spec in TARGETS.items():
        if name != "zellinger-mmlu-chain" and args.only in (None, name):
            results[name] = asyncio.run(run_target(name, spec, args.data, fits))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
