"""The incident agent, graded: pass rate, keyword coverage, trajectory coverage, cost, calls per tier and
time per scenario for each configuration over a folder of scenarios; then retrieval hit@1/hit@3 of memory
recall (with and without recency decay) and runbook lookup on the labelled set shipped with the app.

    .venv/bin/python benchmarks/incidents_eval.py ../shared/data/incidents/opensre-synthetic/eks \
        [--configs analyzers,embedded] [--cheap groq/llama-3.1-8b-instant --strong groq/llama-3.3-70b-versatile]

`analyzers` makes no model call; `embedded` adds the local SmolLM2-135M (offline); `cheap`, `strong` and
`cascade` need the two models' API keys. Evaluation never writes into any memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))  # run from the repository root

from cascadeflow import CascadeFlow
from cascadeflow_incidents.evaluation import evaluate_folder
from cascadeflow_incidents.evaluation.retrieval import load_set, memory_hit_rates, runbook_hit_rates
from cascadeflow_incidents.investigation import InvestigationConfig
from cascadeflow_incidents.llm import plan_for
from cascadeflow_incidents.memory import HashingEmbedder
from cascadeflow_incidents.runbooks import RunbookIndex


async def run_config(name: str, folder: Path, args: argparse.Namespace, audit_dir: Path) -> dict:
    plan = plan_for("embedded" if name == "analyzers" else name, cheap=args.cheap, strong=args.strong)
    cf = CascadeFlow(router=plan.router, audit=str(audit_dir / f"{name}.jsonl"), ledger="memory://")
    run = await evaluate_folder(folder, cf=cf, plan=plan, config=InvestigationConfig(use_model=name != "analyzers"))
    return {"config": name, **run.summary(), "failed": [r.scenario_id for r in run.results if not r.grade.passed]}


def embedders() -> list:
    """The hashing embedder always; the library's MiniLM when its extra is installed."""
    found = [HashingEmbedder()]
    try:
        from cascadeflow.embeddings import default_embedder

        found.append(default_embedder())
    except ImportError:
        print("cascadeflow[embeddings] not installed: retrieval with the hashing embedder only")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of scenarios (alert.json, evidence, answer.yml)")
    parser.add_argument("--configs", default="analyzers,embedded")
    parser.add_argument("--cheap")
    parser.add_argument("--strong")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            rows.append(asyncio.run(run_config(name.strip(), args.data, args, Path(tmp))))
    print(f"# {args.data} ({datetime.now(UTC):%Y-%m-%d})")
    print("| configuration | passed | pass rate | keyword coverage | trajectory coverage | cost USD | "
          "calls per tier | median s/scenario |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        tiers = ", ".join(f"{k} {v}" for k, v in sorted(r["calls_by_tier"].items())) or "none"
        print(f"| {r['config']} | {r['passed']}/{r['scenarios']} | {r['pass_rate']:.1%} | {r['keyword_coverage']:.1%}"
              f" | {r['trajectory_coverage']:.1%} | {r['cost_usd']:.6f} | {tiers} | {r['seconds_median']:.2f} |")
    for r in rows:
        print(f"{r['config']}: answers by author {r['answers_by_author']}"
              + (f"; failed: {', '.join(r['failed'])}" if r["failed"] else ""))
    labelled = load_set()
    retrieval = {}
    for embedder in embedders():
        name = embedder.model_id
        retrieval[f"{name}: memory, decay (90-day half-life)"] = memory_hit_rates(labelled, embedder=embedder)
        retrieval[f"{name}: memory, no decay"] = memory_hit_rates(labelled, embedder=embedder, half_life_days=None)
        retrieval[f"{name}: runbooks, by meaning"] = runbook_hit_rates(labelled, RunbookIndex(embedder=embedder))
    print("\n| retrieval (labelled set) | queries | hit@1 | hit@3 |\n| --- | --- | --- | --- |")
    for name, rates in retrieval.items():
        print(f"| {name} | {rates.queries} | {rates.hit_at_1:.1%} | {rates.hit_at_3:.1%} |")
    if args.json:
        figures = {k: {"queries": v.queries, "hit_at_1": v.hit_at_1, "hit_at_3": v.hit_at_3}
                   for k, v in retrieval.items()}
        args.json.write_text(json.dumps({"eval": rows, "retrieval": figures}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
