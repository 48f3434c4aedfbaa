"""Semantic cache quality: hit rate on paraphrases and false-hit rate on near misses, over thresholds.

For every labelled pair of benchmarks/cache_pairs.py, request A (its earlier turn, if any, then its question)
is the cached one and request B the new one. Two policies are scored on the same pairs:
- cascadeflow: B is served A's answer when the exact keys match, or when the semantic scopes match (the
  whole request but the last user message's wording, with that message's literals) and the embeddings of
  the two last messages are at least `threshold` similar;
- last message only: the common default of comparing the embedding of the last message alone, no scope.
The curve is printed for both; "default" marks cascadeflow's configured `CacheConfig.similarity`, and the
last-message policy is also shown at 0.8, the usual fixed similarity. Finally the chosen default is checked
end to end through a real ResponseCache (store A, look up B).

    .venv/bin/python benchmarks/cache_semantic.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_pairs import Pair, build_pairs

from cascadeflow.cache import CacheConfig, ResponseCache, cache_keys, route_facts
from cascadeflow.cache.backends.memory import MemoryCacheBackend
from cascadeflow.cache.config import DEFAULT_SIMILARITY
from cascadeflow.cache.entry import CachedAnswer
from cascadeflow.embeddings import default_embedder
from cascadeflow.messages import Usage, build_request
from cascadeflow.models import ModelConfig

MODEL = ModelConfig("gpt-4o-mini", provider="openai")
THRESHOLDS = [round(0.70 + 0.01 * i, 2) for i in range(30)]
COMMON_DEFAULT = 0.8


def request_of(context: str, text: str):
    messages = [{"role": "system", "content": "You are an SRE assistant."}]
    if context:
        messages += [{"role": "user", "content": context}, {"role": "assistant", "content": "Noted."}]
    return build_request(messages + [{"role": "user", "content": text}], temperature=0)


def score(pairs: list[Pair]) -> dict[str, np.ndarray]:
    embedder = default_embedder()
    route = route_facts((MODEL,))
    a_keys = [cache_keys(request_of(p.context_a, p.text_a), route, {}) for p in pairs]
    b_keys = [cache_keys(request_of(p.context_b, p.text_b), route, {}) for p in pairs]
    va, vb = embedder.embed([p.text_a for p in pairs]), embedder.embed([p.text_b for p in pairs])
    return {
        "label": np.array([p.should_hit for p in pairs]),
        "similarity": (va * vb).sum(axis=1),
        "exact": np.array([a.exact == b.exact for a, b in zip(a_keys, b_keys, strict=True)]),
        "same_scope": np.array([a.semantic_scope == b.semantic_scope for a, b in zip(a_keys, b_keys, strict=True)]),
    }


def rates(hits: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    return float(hits[label].mean()), float(hits[~label].mean())


def curve(s: dict[str, np.ndarray]) -> list[dict[str, float]]:
    rows = []
    for t in THRESHOLDS:
        ours = s["exact"] | (s["same_scope"] & (s["similarity"] >= t))
        last_only = s["similarity"] >= t
        hit, false_hit = rates(ours, s["label"])
        hit_l, false_l = rates(last_only, s["label"])
        rows.append({"threshold": t, "hit_rate": hit, "false_hit_rate": false_hit,
                     "last_only_hit_rate": hit_l, "last_only_false_hit_rate": false_l})
    return rows


def end_to_end(pairs: list[Pair], threshold: float) -> tuple[float, float]:
    """Hit and false-hit rates of a real ResponseCache at `threshold` (store A, look B up)."""
    route = route_facts((MODEL,))
    served = []
    for pair in pairs:
        cache = ResponseCache(CacheConfig(semantic=True, similarity=threshold), backend=MemoryCacheBackend())
        probe = cache.lookup(cache_keys(request_of(pair.context_a, pair.text_a), route, {}))
        cache.store(probe, CachedAnswer(content="answer A", model=MODEL.id, provider="openai", usage=Usage(1, 1),
                                        cost=0))
        served.append(cache.lookup(cache_keys(request_of(pair.context_b, pair.text_b), route, {})).answer is not None)
    return rates(np.array(served), np.array([p.should_hit for p in pairs]))


def per_kind(pairs: list[Pair], s: dict[str, np.ndarray], threshold: float) -> dict[str, tuple[int, float, float]]:
    ours = s["exact"] | (s["same_scope"] & (s["similarity"] >= threshold))
    last_only = s["similarity"] >= COMMON_DEFAULT
    kinds: dict[str, tuple[int, float, float]] = {}
    for kind in sorted({p.kind for p in pairs}):
        mask = np.array([p.kind == kind for p in pairs])
        kinds[kind] = (int(mask.sum()), float(ours[mask].mean()), float(last_only[mask].mean()))
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pairs = build_pairs()
    s = score(pairs)
    rows = curve(s)
    chosen = min((r for r in rows if r["false_hit_rate"] <= 0.01), key=lambda r: r["threshold"])
    checked = end_to_end(pairs, DEFAULT_SIMILARITY)
    default_row = next(r for r in rows if r["threshold"] == DEFAULT_SIMILARITY)
    common = next(r for r in rows if r["threshold"] == COMMON_DEFAULT)
    if args.json:
        print(json.dumps({"pairs": len(pairs), "curve": rows, "lowest_threshold_at_1pct": chosen,
                          "default": DEFAULT_SIMILARITY, "end_to_end": checked}, indent=1))
        return
    print(f"{len(pairs)} pairs: {int(s['label'].sum())} paraphrases, {int((~s['label']).sum())} near misses")
    print("threshold  hit   false-hit | last-message-only: hit  false-hit")
    for r in rows:
        mark = " <- default" if r["threshold"] == DEFAULT_SIMILARITY else ""
        print(f"  {r['threshold']:.2f}   {r['hit_rate']:5.1%}  {r['false_hit_rate']:5.1%}   |"
              f"                  {r['last_only_hit_rate']:5.1%}  {r['last_only_false_hit_rate']:5.1%}{mark}")
    print(f"lowest threshold with false hits <= 1%: {chosen['threshold']:.2f} "
          f"(hit {chosen['hit_rate']:.1%}, false hit {chosen['false_hit_rate']:.1%})")
    print(f"cascadeflow default {DEFAULT_SIMILARITY:.2f}: hit {default_row['hit_rate']:.1%}, "
          f"false hit {default_row['false_hit_rate']:.1%}; through ResponseCache: hit {checked[0]:.1%}, "
          f"false hit {checked[1]:.1%}")
    print(f"last message only at {COMMON_DEFAULT}: hit {common['last_only_hit_rate']:.1%}, "
          f"false hit {common['last_only_false_hit_rate']:.1%}")
    print("per kind at the default (served share; cascadeflow vs last message only at 0.8):")
    for kind, (n, ours, last) in per_kind(pairs, s, DEFAULT_SIMILARITY).items():
        print(f"  {kind:11s} n={n:3d}  {ours:6.1%}  {last:6.1%}")


if __name__ == "__main__":
    main()
