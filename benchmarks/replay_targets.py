"""Replay benchmarks on recorded real model answers: three cascade targets.

Usage: .venv/bin/python benchmarks/replay_targets.py [--data ../shared/data/replay] [--only NAME]
       [--json FILE] [--plots FOLDER]

Every operating point is chosen on calibration data only (a fixed random half, or the other folds) and
measured by a real CascadeAgent run on the held-out queries. Each target runs twice: with the default
validator signals' scores as they are (uncalibrated), and with a logistic calibration fitted on the
calibration part over every built-in signal, the soft ones included (answer form and consistency, quantity
coverage, self-correction, answer length: see docs/validation.md). The calibrated study runs twice more:
with the paired lower-bound rule (`confidence=0.95`: a threshold must reach the target by the one-sided 95%
lower bound of its paired difference to strong-only quality on the calibration data), and, for robustness,
both rules again on three other random splits (1-3). "Sensitivity" rows choose the threshold for a higher quality
share on the calibration data, to show how the held-out result moves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from cascadeflow.cascade.quality import BUILTIN_SIGNALS, QualityConfig
from cascadeflow.replay.converters import ModelResolver, convert
from cascadeflow.replay.engine import ReplaySetup
from cascadeflow.replay.plot import plot_operating_points
from cascadeflow.replay.report import OperatingPoint, Reference, baselines, reference
from cascadeflow.replay.study import cross_validate, sweep_points

ROOT = Path(__file__).resolve().parent.parent
MODELS = ModelResolver.from_options((), Path(__file__).with_name("replay_models.toml"))

TARGETS = {
    "routellm-gsm8k": {
        "fmt": "routellm", "path": "routellm-gpt4-mixtral/gsm8k", "models": ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"),
        "target": 0.95, "folds": "halves", "calibrated_sensitivity": (0.96, 0.97, 0.98),
        "goal": "strong-call fraction <= 0.55 at >= 95% of GPT-4 quality"},
    "zellinger-mmlu": {
        "fmt": "zellinger", "path": "zellinger-cascades/mmlu.qwen_oai.train.jsonl.gz",
        "models": ("gpt-4o-mini", "gpt-4o"), "target": 0.95, "folds": 5, "sensitivity": (0.96, 0.97, 0.98), "calibrated_sensitivity": (0.96, 0.97),
        "goal": "cost fraction <= 0.25 at >= 95% of gpt-4o accuracy (cross-validated)"},
    "zeroeval-gsm8k": {
        "fmt": "zeroeval", "path": "zeroeval-gsm8k",
        "models": ("Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3.1-70B-Instruct"), "target": 0.98,
        "folds": "halves", "calibrated_sensitivity": (0.985, 0.99),
        "goal": "quality >= 98% of 70B at the lowest cost reachable"},
    # Not a target: the same MMLU queries through three tiers of the qwen_oai chain (uncalibrated, because
    # the calibration is fitted on the first tier's drafts only).
    "zellinger-mmlu-chain": {
        "fmt": "zellinger", "path": "zellinger-cascades/mmlu.qwen_oai.train.jsonl.gz",
        "models": ("gpt-4o-mini", "qwen2.5-72b-instruct", "gpt-4o"), "target": 0.95, "folds": 5,
        "fits": (False,), "goal": "extra: three tiers, cost and quality against gpt-4o"},
}


CONFIDENCE = 0.95  # the paired lower-bound rule's one-sided level
OTHER_SPLITS = (1, 2, 3)  # other random splits, to show how much a result depends on the split


def _folds(dataset, spec, split: int = 0):  # type: ignore[no-untyped-def]
    if spec == "halves":
        a, b = dataset.halves(split)
        return [(a, b), (b, a)]
    return dataset.folds(int(spec), split)


def _quality(fit: bool) -> QualityConfig:
    """Uncalibrated: the default signals (soft ones are meaningless without a fitted weight). Calibrated:
    every built-in signal, so the fit can weigh the soft ones."""
    return QualityConfig(signals=BUILTIN_SIGNALS) if fit else QualityConfig()


def _print_folds(result: dict) -> None:
    """Each fold's held-out result, then the pooled one and random routing at the same strong share."""
    for i, fold in enumerate(result["folds"]):
        flag = "" if fold["target_reached_on_calibration"] else "  [target not reached on calibration data]"
        print(_line(f"fold {i} (t={fold['chosen_on_calibration']['threshold']:.4f})", fold["evaluated"]) + flag)
    print(_line("pooled held-out", result["pooled"]))
    print(_line("random routing, same strong share", result["random_at_same_fraction"]))


def _line(name: str, p: dict) -> str:
    gap = "n/a" if p["gap_recovered"] is None else f"{p['gap_recovered']:.3f}"
    return (f"  {name:<34} strong calls {p['strong_call_fraction']:.3f}  cost frac {p['cost_fraction']:.3f}  "
            f"quality {p['quality']:.4f}  quality frac {p['quality_fraction']:.3f}  gap recovered {gap}")


async def run_target(name: str, spec: dict, data: Path, plots: Path | None) -> dict:
    dataset = convert(spec["fmt"], data / spec["path"], MODELS)
    models = list(spec["models"])
    folds = _folds(dataset, spec["folds"])
    out = {"dataset": dataset.name, "n": len(dataset.queries), "models": models, "goal": spec["goal"]}
    print(f"\n## {name}: {dataset.name}, n={len(dataset.queries)}, {' -> '.join(models)}; goal: {spec['goal']}")
    started = time.perf_counter()
    for fit in spec.get("fits", (False, True)):
        result = await cross_validate(folds, models, _quality(fit), target_quality=spec["target"], fit=fit)
        label = "calibrated" if fit else "uncalibrated"
        out[label] = result
        print(f"{label} (threshold chosen on calibration data for {spec['target']:.0%} of strong-only quality):")
        _print_folds(result)
        print(f"  signals in draft verdicts: {result['draft_signals']}")
        print(f"  why drafts were escalated: {result['escalation_causes']}")
    for target in spec.get("sensitivity", ()):
        # how the held-out result moves when the threshold is chosen for a higher quality on calibration data
        result = await cross_validate(folds, models, QualityConfig(), target_quality=target, fit=False)
        out.setdefault("sensitivity", {})[str(target)] = result["pooled"]
        print(_line(f"uncalibrated, chosen for {target:.0%}", result["pooled"]))
    if "calibrated" in out:
        # the paired rule: a threshold must reach the target by the lower confidence bound of its per-query
        # difference to strong-only quality on the calibration data, not by its measured share
        result = await cross_validate(folds, models, _quality(True), target_quality=spec["target"], fit=True,
                                      confidence=CONFIDENCE)
        out["calibrated_paired_rule"] = result
        print(f"calibrated, paired rule (chosen for {spec['target']:.0%} at {CONFIDENCE:.0%} one-sided confidence):")
        _print_folds(result)
        print(f"  why drafts were escalated: {result['escalation_causes']}")
        for split in OTHER_SPLITS:
            other = _folds(dataset, spec["folds"], split)
            for rule, confidence in (("chosen for the target", None), ("paired rule", CONFIDENCE)):
                pooled = (await cross_validate(other, models, _quality(True), target_quality=spec["target"],
                                               fit=True, confidence=confidence))["pooled"]
                out.setdefault("robustness", {}).setdefault(rule, {})[str(split)] = pooled
                print(_line(f"split {split}, {rule}", pooled))
    for target in spec.get("calibrated_sensitivity", ()):
        result = await cross_validate(folds, models, _quality(True), target_quality=target, fit=True)
        out.setdefault("calibrated_sensitivity", {})[str(target)] = result["pooled"]
        print(_line(f"calibrated, chosen for {target:.1%}", result["pooled"]))
    last = out["calibrated" if "calibrated" in out else "uncalibrated"]
    for b in last["baselines"]:
        print(_line(b["name"], b))
    # the whole-dataset uncalibrated sweep (in-sample): the hindsight ceiling and the plot's curve
    setup = ReplaySetup.build(dataset, models)
    ref = reference(dataset, models[0], models[-1], setup.price_book)
    in_sample, _ = await sweep_points(setup, ref)
    out["hindsight"] = _hindsight(in_sample, ref, spec["target"])
    out["seconds"] = round(time.perf_counter() - started, 2)
    if plots is not None:
        out["plot"] = str(await _plot(name, dataset, models, out, plots, spec["target"], in_sample, ref))
    return out


def _hindsight(points: list[OperatingPoint], ref: Reference, target: float) -> dict:
    """The ceiling no cross-validated rule can beat: the cheapest uncalibrated threshold that reaches the
    target when chosen on the whole dataset and scored on the same queries (in-sample, not a result), and
    how many queries only one of the two models gets right."""
    reaching = [p for p in points if p.quality_fraction >= target]
    best = min(reaching, key=lambda p: p.cost_fraction).to_dict() if reaching else None
    only_strong = sum(1 for c, s in zip(ref.cheap_quality, ref.strong_quality, strict=True) if s > c)
    only_cheap = sum(1 for c, s in zip(ref.cheap_quality, ref.strong_quality, strict=True) if c > s)
    print(f"  only the strong model right on {only_strong} queries, only the cheap one on {only_cheap}")
    if best is not None:
        print(_line(f"in-sample ceiling, {target:.0%} (hindsight)", best))
    else:
        print(f"  in-sample ceiling: no uncalibrated threshold reaches {target:.0%}, even in hindsight")
    return {"cheapest_in_sample_reaching_target": best, "only_strong_right": only_strong,
            "only_cheap_right": only_cheap}


async def _plot(name: str, dataset, models: list[str], out: dict, plots: Path,  # type: ignore[no-untyped-def]
                target: float, points: list[OperatingPoint], ref: Reference) -> Path:
    """Whole-dataset sweeps (the curves' shape, in-sample) with the pooled held-out result marked."""
    from cascadeflow.replay.engine import fit_calibration, with_calibration

    more = {}
    if "calibrated" in out:
        full = ReplaySetup.build(dataset, models, _quality(True))
        calibrated = with_calibration(full, await fit_calibration(full))
        more["calibrated sweep (in-sample fit)"], _ = await sweep_points(calibrated, ref)
    label = "calibrated" if "calibrated" in out else "uncalibrated"
    headline = "calibrated_paired_rule" if "calibrated_paired_rule" in out else label
    chosen = OperatingPoint(**out[headline]["pooled"])
    rnd = [OperatingPoint(**out[headline]["random_at_same_fraction"])]
    also = {}
    if headline != label:
        also[f"pooled held-out ({label}, chosen for the target as measured)"] = OperatingPoint(**out[label]["pooled"])
    rule = "paired rule" if headline != label else "chosen for the target"
    return plot_operating_points(plots / f"replay_{name}.png", f"{name}: {' -> '.join(models)}",
                                 points, baselines(ref) + rnd, chosen,
                                 f"pooled held-out ({label}, {rule}, cross-validated)", target=target,
                                 more_sweeps=more, more_points=also)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "replay")
    parser.add_argument("--only", choices=sorted(TARGETS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plots", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no replay data at {args.data}; pass --data", file=sys.stderr)
        return 2
    results = {}
    for name, spec in TARGETS.items():
        if args.only in (None, name):
            results[name] = asyncio.run(run_target(name, spec, args.data, args.plots))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
