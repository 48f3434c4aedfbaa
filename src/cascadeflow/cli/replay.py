"""`cascadeflow replay`: convert recorded answers to the replay format, split them, and replay a cascade."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cascadeflow.cli import app
from cascadeflow.errors import CascadeflowError

replay_app = typer.Typer(no_args_is_help=True, help="Replay recorded model answers through the real cascade.")
app.add_typer(replay_app, name="replay")
console = Console()


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(code=2)


@replay_app.command("convert")
def convert_cmd(
    path: Annotated[Path, typer.Argument(help="file or folder in the source layout")],
    source: Annotated[str, typer.Option("--from", help="routellm | zeroeval | zellinger | audit")],
    out: Annotated[Path, typer.Option("-o", "--out", help="recorded-outcome JSON Lines to write (.gz to compress)")],
    price: Annotated[list[str] | None, typer.Option(
        "--price", help="MODEL=INPUT,OUTPUT in USD per million tokens, for a model the price book lacks")] = None,
    models_file: Annotated[Path | None, typer.Option(
        "--models", help="JSON/TOML mapping: recorded name -> provider/model or {input=.., output=..}")] = None,
) -> None:
    """Convert a public recorded-answer layout (or our audit log) to the recorded-outcome format."""
    from cascadeflow.replay.converters import ModelResolver, convert
    from cascadeflow.replay.format import dump_dataset

    try:
        dataset = convert(source, path, ModelResolver.from_options(price or (), models_file))
    except CascadeflowError as exc:
        raise _fail(exc) from None
    dump_dataset(dataset, out)
    models = ", ".join(f"{a} ({c.id})" for a, c in dataset.models.items())
    console.print(f"wrote {len(dataset.queries)} queries to {out}; models: {models}")


@replay_app.command("split")
def split_cmd(
    dataset_path: Annotated[Path, typer.Argument(help="recorded-outcome file")],
    out_a: Annotated[Path, typer.Option("--out-a", help="first half")],
    out_b: Annotated[Path, typer.Option("--out-b", help="second half (the complement)")],
    seed: Annotated[int, typer.Option(help="seed of the fixed random split")] = 0,
) -> None:
    """Split a dataset into a fixed random half and its complement (calibrate on one, evaluate the other)."""
    from cascadeflow.replay.format import dump_dataset, load_dataset

    try:
        first, second = load_dataset(dataset_path).halves(seed)
    except CascadeflowError as exc:
        raise _fail(exc) from None
    dump_dataset(first, out_a)
    dump_dataset(second, out_b)
    console.print(f"wrote {len(first.queries)} queries to {out_a} and {len(second.queries)} to {out_b}")


def _table(title: str, rows: list[dict]) -> Table:
    table = Table(title=title, caption="strong: strong-call share; cost/S, q/S: share of strong-only; "
                                       "gap: cheap-to-strong quality gap recovered")
    # short headers so the table fits an 80-column terminal: strong = strong-call share, cost/S and q/S =
    # cost and quality as shares of strong-only, gap = share of the cheap-to-strong quality gap recovered
    for col in ("policy", "t", "strong", "cost $", "cost/S", "quality", "q/S", "gap"):
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for p in rows:
        gap = p["gap_recovered"]
        table.add_row(p["name"], "" if p["threshold"] is None else f"{p['threshold']:.3f}",
                      f"{p['strong_call_fraction']:.3f}", f"{p['cost_usd']:.4f}", f"{p['cost_fraction']:.3f}",
                      f"{p['quality']:.4f}", f"{p['quality_fraction']:.3f}", "" if gap is None else f"{gap:.3f}")
    return table


def _print(result: dict) -> None:
    points = result["operating_points"]
    shown = points if len(points) <= 25 else points[:: max(1, len(points) // 20)]
    console.print(_table(escape(f"{result['dataset']} (n={result['n']}): {' -> '.join(result['models'])}"),
                         shown + [b for b in result["baselines"] if not b["name"].startswith("random")]))
    target = result.get("target")
    if target:
        rows = [r for r in (target.get("chosen_on_calibration"), target.get("evaluated"),
                            target.get("random_at_same_fraction")) if r]
        names = ("calibration", "held-out", "random")  # random: routing at the held-out strong share
        rows = [{**row, "name": name} for row, name in zip(rows, names, strict=False)]
        bound = f" at {target['confidence']:.0%} confidence" if target.get("confidence") else ""
        console.print(_table(escape(f"target {target['target_quality_fraction']:.0%} of strong-only quality"
                                    f"{bound}, threshold chosen on {target['calibration_dataset']}"), rows))
        if target.get("note"):
            console.print(target["note"])
    if result.get("draft_signals"):
        console.print("signals in draft verdicts: " + ", ".join(f"{k}={v}" for k, v in result["draft_signals"].items()))


@replay_app.command("run")
def run_cmd(
    dataset_path: Annotated[Path, typer.Argument(metavar="DATASET", help="recorded-outcome file")],
    models: Annotated[str, typer.Option(help="cascade tiers, cheapest first: alias or model id, comma-separated")],
    threshold: Annotated[float | None, typer.Option(help="one acceptance threshold")] = None,
    do_sweep: Annotated[bool, typer.Option("--sweep", help="sweep thresholds")] = False,
    calibrate_on: Annotated[Path | None, typer.Option(help="calibration data (never the evaluated queries)")] = None,
    fit: Annotated[bool, typer.Option("--fit-calibration/--no-fit-calibration",
                                      help="with --calibrate-on: fit the validator calibration there too")] = True,
    target_quality: Annotated[float | None, typer.Option(
        help="share of strong-only quality to reach, e.g. 0.95")] = None,
    confidence: Annotated[float | None, typer.Option(
        help="with --target-quality: choose by the one-sided lower confidence bound of the quality on the "
             "calibration data at this level, e.g. 0.95 (default: by the quality as measured)")] = None,
    signals: Annotated[str | None, typer.Option(help="built-in validator signals to use, comma-separated, or 'all'")] = None,
    budget: Annotated[float | None, typer.Option(
        help="what-if: one budget in USD over the whole replay, spent in query order")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results as JSON")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a cost/quality PNG")] = None,
) -> None:
    """Run the real cascade over recorded answers and report cost and quality against baselines."""
    if threshold is None and not do_sweep and target_quality is None:
        raise _fail(ValueError("give --threshold T, --sweep, or --target-quality Q with --calibrate-on"))
    if confidence is not None and target_quality is None:
        raise _fail(ValueError("--confidence applies to --target-quality; give both"))
    try:
        from cascadeflow.replay.report import check_confidence

        check_confidence(confidence)
        result = _run(dataset_path, models, threshold, do_sweep, calibrate_on, fit, target_quality, confidence,
                      signals, budget)
    except CascadeflowError as exc:
        raise _fail(exc) from None
    _print(result)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
    if plot is not None:
        from cascadeflow.replay.plot import plot_operating_points
        from cascadeflow.replay.report import OperatingPoint

        def pts(rows: list[dict]) -> list[OperatingPoint]:
            return [OperatingPoint(**r) for r in rows]
        evaluated = (result.get("target") or {}).get("evaluated")
        plot_operating_points(plot, f"{result['dataset']}: {' -> '.join(result['models'])}",
                              pts(result["operating_points"]), pts(result["baselines"]),
                              OperatingPoint(**evaluated) if evaluated else None)
        console.print(f"wrote {plot}")


def _run(dataset_path: Path, models: str, threshold: float | None, do_sweep: bool, calibrate_on: Path | None,
         fit: bool, target_quality: float | None, confidence: float | None, signals: str | None,
         budget: float | None) -> dict:
    from cascadeflow.cascade.quality import BUILTIN_SIGNALS, QualityConfig
    from cascadeflow.replay.engine import ReplaySetup, fit_calibration, with_calibration
    from cascadeflow.replay.format import load_dataset
    from cascadeflow.replay.study import run_study

    chosen = BUILTIN_SIGNALS if signals == "all" else tuple(s.strip() for s in (signals or "").split(",") if s.strip())
    quality = QualityConfig(signals=chosen) if chosen else QualityConfig()
    names = [m.strip() for m in models.split(",") if m.strip()]
    dataset = load_dataset(dataset_path)
    setup = ReplaySetup.build(dataset, names, quality, budget_usd=budget)
    calibration = None
    if calibrate_on is not None:
        calibration = ReplaySetup.build(load_dataset(calibrate_on), names, quality)
        overlap = {q.id for q in calibration.dataset.queries} & {q.id for q in dataset.queries}
        if overlap:
            raise _fail(ValueError(f"{len(overlap)} queries are in both the calibration and the evaluated data; "
                                   f"split them first (cascadeflow replay split)"))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("replaying", total=None)

        def advance(n: int) -> None:
            bar.advance(task, n)

        async def go() -> dict:
            nonlocal setup, calibration
            if calibration is not None and fit:
                fitted = await fit_calibration(calibration)
                setup, calibration = with_calibration(setup, fitted), with_calibration(calibration, fitted)
            study = await run_study(dataset, setup, threshold=threshold, do_sweep=do_sweep,
                                    calibration=calibration, target_quality=target_quality,
                                    confidence=confidence, progress=advance)
            out = study.to_dict()
            out["calibrated"] = calibration is not None and fit
            return out

        return asyncio.run(go())
