"""Labelled query pairs for the semantic cache: paraphrases that should be served the same answer, and near
misses that must not be.

How the set is made (deterministic, seed 0; nothing is read from outside this file):
- An *intent* is a question an on-call engineer asks, with slots (service, host, number, time window) and
  several wordings written for this benchmark. Every wording of one intent asks exactly the same thing.
- A *paraphrase* pair takes two different wordings of one intent with the same slot values (label: hit).
- A *near miss* keeps the wording and changes one slot (another service, host, number or time window), or
  uses the intent's negated wording (label: miss). These are the cases a cache must not confuse: the answer
  about checkout is wrong for payments.
- A *context* near miss is a follow-up whose last user message is identical ("what should I check next?")
  after a different earlier question (label: miss). A cache that compares only the last message serves
  the wrong answer here; the semantic scope (everything but the last message's text) keeps them apart.

Each pair is (kind, label, context_a, text_a, context_b, text_b), where a context is the earlier user turn
("" for single-turn questions). `python benchmarks/cache_pairs.py` prints the counts per kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SERVICES = ["checkout", "payments", "auth", "search", "inventory", "cart", "notifications", "billing",
            "shipping", "recommendations", "user-profile", "gateway"]
HOSTS = ["db-1", "db-2", "web-03", "web-07", "cache-02", "kafka-5", "worker-11", "lb-east-1"]
WINDOWS = ["last hour", "last 15 minutes", "last 24 hours", "last 7 days", "past 30 minutes", "previous week"]
NUMBERS = [2, 3, 5, 10, 20, 50, 95, 99]

# intent -> (slots it uses, wordings, negated wording or None). Slots: {service} {host} {window} {n}.
INTENTS: dict[str, tuple[tuple[str, ...], list[str], str | None]] = {
    "errors": (("service", "window"), [
        "Why is the {service} service returning 500 errors in the {window}?",
        "What is causing HTTP 500 responses from {service} over the {window}?",
        "{service} has been throwing 500s for the {window}, what is the cause?",
        "Explain the spike of 5xx errors on {service} during the {window}.",
    ], None),
    "latency": (("service", "n"), [
        "Why did p{n} latency of {service} go up?",
        "What made the {service} p{n} latency increase?",
        "The p{n} response time of {service} got worse, why?",
    ], None),
    "disk": (("host",), [
        "How do I free disk space on {host}?",
        "{host} is running out of disk, how can I clean it up?",
        "What is the safest way to reclaim disk space on {host}?",
    ], None),
    "restart": (("service", "host"), [
        "Should I restart {service} on {host}?",
        "Is it safe to restart the {service} process running on {host}?",
        "Would restarting {service} on {host} help right now?",
    ], "Should I not restart {service} on {host}?"),
    "replicas": (("service", "n"), [
        "Scale {service} to {n} replicas.",
        "Set the replica count of {service} to {n}.",
        "Change {service} so that it runs {n} replicas.",
    ], None),
    "alerts": (("host", "window"), [
        "Which alerts fired for {host} in the {window}?",
        "List the alerts that triggered on {host} during the {window}.",
        "Show me every alert raised for {host} over the {window}.",
    ], "Which alerts did not fire for {host} in the {window}?"),
    "deploy": (("service", "window"), [
        "Was there a deploy of {service} in the {window}?",
        "Did anyone ship a new {service} release during the {window}?",
        "Has {service} been deployed in the {window}?",
    ], "Was there no deploy of {service} in the {window}?"),
    "pods": (("service",), [
        "Which {service} pods are ready?",
        "List the {service} pods that are in a ready state.",
        "Show the ready pods of the {service} deployment.",
    ], "Which {service} pods are not ready?"),
    "error_rate": (("service", "n", "window"), [
        "Did the {service} error rate exceed {n}% in the {window}?",
        "Was the error rate of {service} above {n}% during the {window}?",
        "Has {service} had more than {n}% errors in the {window}?",
    ], "Did the {service} error rate stay below {n}% in the {window}?"),
    "connections": (("host", "n"), [
        "Why does {host} have more than {n} open connections?",
        "What explains over {n} open connections on {host}?",
        "{host} shows above {n} open connections, why?",
    ], None),
}

FOLLOW_UPS = [("What should I check next?", "What do I look at next?"),
              ("What is the likely root cause?", "What is probably the root cause?"),
              ("How do I fix it?", "How can I fix this?"),
              ("Is this related to the last deploy?", "Could the last deploy have caused this?"),
              ("Summarise the findings.", "Give me a summary of the findings.")]


@dataclass(frozen=True, slots=True)
class Pair:
    kind: str  # paraphrase | service | host | number | window | negation | context
    should_hit: bool
    context_a: str
    text_a: str
    context_b: str
    text_b: str


def _values(rng: random.Random, slots: tuple[str, ...]) -> dict[str, object]:
    pools = {"service": SERVICES, "host": HOSTS, "window": WINDOWS, "n": NUMBERS}
    return {slot: rng.choice(pools[slot]) for slot in slots}


def _other(rng: random.Random, slot: str, current: object) -> object:
    pools = {"service": SERVICES, "host": HOSTS, "window": WINDOWS, "n": NUMBERS}
    return rng.choice([v for v in pools[slot] if v != current])


SLOT_KIND = {"service": "service", "host": "host", "n": "number", "window": "window"}


def build_pairs(*, per_intent: int = 25, seed: int = 0) -> list[Pair]:
    """Paraphrase and near-miss pairs over every intent (about 700 pairs with the defaults)."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for slots, wordings, negated in INTENTS.values():
        for _ in range(per_intent):
            values = _values(rng, slots)
            first, second = rng.sample(wordings, 2)
            pairs.append(Pair("paraphrase", True, "", first.format(**values), "", second.format(**values)))
            wording = rng.choice(wordings)
            slot = rng.choice(slots)
            changed = {**values, slot: _other(rng, slot, values[slot])}
            pairs.append(Pair(SLOT_KIND[slot], False, "", wording.format(**values), "", wording.format(**changed)))
            if negated is not None:
                pairs.append(Pair("negation", False, "", wording.format(**values), "", negated.format(**values)))
    pairs.extend(_context_pairs(rng, count=per_intent * 4))
    return pairs


def _context_pairs(rng: random.Random, *, count: int) -> list[Pair]:
    """Identical follow-ups after different first questions (miss), and after the same one (hit)."""
    out = []
    intents = list(INTENTS.values())
    for index in range(count):
        slots, wordings, _ = rng.choice(intents)
        values = _values(rng, slots)
        slot = rng.choice(slots)
        changed = {**values, slot: _other(rng, slot, values[slot])}
        wording = rng.choice(wordings)
        follow, reworded = rng.choice(FOLLOW_UPS)
        if index % 2:
            out.append(Pair("context", False, wording.format(**values), follow, wording.format(**changed), follow))
        else:  # the same conversation with a reworded follow-up: a paraphrase that carries context
            out.append(Pair("paraphrase", True, wording.format(**values), follow, wording.format(**values),
                            reworded))
    return out


if __name__ == "__main__":
    from collections import Counter

    counts = Counter((p.kind, p.should_hit) for p in build_pairs())
    for (kind, hit), n in sorted(counts.items()):
        print(f"{kind:12s} {'hit ' if hit else 'miss'} {n}")
