"""A labelled corpus for the personal-data detector, generated (seeded) rather than collected: each case is a
sentence of the kind an incident-response agent sends, with at most one value of personal data in it and the
kind it is (None for the look-alikes that must not be taken: order numbers, timestamps, hashes, versions).

Its make-up is stated in docs/compliance.md; `benchmarks/pii_detection.py` measures precision and recall on it.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PiiCase:
    text: str
    value: str  # the personal-data value inside `text` ("" for a look-alike)
    kind: str | None  # its kind, or None when `text` holds none
    variant: str  # how the value is written (e.g. "card/dots"), for per-variant figures


TEMPLATES = (
    "Customer reported the outage, contact: {v}. Pager fired at 03:12 UTC.",
    "escalate to {v} if the db-primary lag exceeds 30s",
    "ticket INC-4821 opened by {v} (priority P2)",
    "{v}",
    "Refund requested; details on file: {v}\nplease verify before replying.",
    "[alert] payments-api 5xx rate 4.2% — user data: {v} — runbook RB-17",
)


def luhn_complete(body: str) -> str:
    """`body` with the Luhn check digit appended."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return luhn_complete(body)


def _groups(number: str, sep: str) -> str:
    sizes = (4, 6, 5) if len(number) == 15 else (4, 4, 4, 4)
    out, pos = [], 0
    for size in sizes:
        out.append(number[pos:pos + size])
        pos += size
    return sep.join(out)


IBAN_FORMATS = {"DE": "n18", "GB": "a4n14", "NL": "a4n10", "FR": "n23", "ES": "n20", "IT": "a1n22", "BE": "n12"}


def _iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_FORMATS))
    bban = ""
    for chars, count in re.findall(r"([an])(\d+)", IBAN_FORMATS[country]):
        pool = string.ascii_uppercase if chars == "a" else string.digits
        bban += "".join(rng.choice(pool) for _ in range(int(count)))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    return f"{country}{check:02d}{bban}"


def _spaced(text: str) -> str:
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


NAMES = ("maria", "jürgen", "søren", "zoë", "иван", "佐藤", "ahmed", "li.wei", "o'brien", "anne-marie")
DOMAINS = ("example.com", "mail.example.org", "bücher.example", "пример.рф", "corp.example.co.uk")


def _email(rng: random.Random, ascii_only: bool) -> str:
    names = [n for n in NAMES if n.isascii() and "'" not in n] if ascii_only else list(NAMES)
    domains = [d for d in DOMAINS if d.isascii()] if ascii_only else list(DOMAINS)
    return f"{rng.choice(names)}{rng.randint(1, 99)}@{rng.choice(domains)}"


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice(string.digits) for _ in range(n - 1))


def _ssn(rng: random.Random) -> str:
    return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


Maker = Callable[[random.Random], str]
POSITIVES: dict[str, tuple[str, Maker]] = {
    "email/ascii": ("email", lambda r: _email(r, True)),
    "email/non-ascii": ("email", lambda r: _email(r, False) if r.random() < 0.5 else
                        f"{r.choice(['jürgen', 'søren', 'zoë', 'иван'])}@{r.choice(DOMAINS)}"),
    "phone/e164": ("phone", lambda r: "+" + _digits(r, r.randint(10, 13))),
    "phone/international-grouped": ("phone", lambda r: f"+{r.randint(1, 49)} {_digits(r, 3)} {_digits(r, 3)} "
                                                       f"{_digits(r, 4)}"),
    "phone/us-national": ("phone", lambda r: f"({_digits(r, 3)}) {_digits(r, 3)}-{_digits(r, 4)}"),
    "phone/dotted": ("phone", lambda r: f"{_digits(r, 3)}.{_digits(r, 3)}.{_digits(r, 4)}"),
    "card/compact": ("card", _card),
    "card/spaces": ("card", lambda r: _groups(_card(r), " ")),
    "card/dashes": ("card", lambda r: _groups(_card(r), "-")),
    "card/dots": ("card", lambda r: _groups(_card(r), ".")),
    "card/nbsp": ("card", lambda r: _groups(_card(r), "\u00a0")),
    "card/line-break": ("card", lambda r: _groups(_card(r), "\n")),
    "iban/compact": ("iban", _iban),
    "iban/grouped": ("iban", lambda r: _spaced(_iban(r))),
    "iban/lowercase": ("iban", lambda r: _iban(r).lower()),
    "iban/lowercase-grouped": ("iban", lambda r: _spaced(_iban(r)).lower()),
    "ssn/dashed": ("ssn", _ssn),
}


def _bad_luhn(r: random.Random) -> str:
    number = _card(r)
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def _bad_iban(r: random.Random) -> str:
    iban = _iban(r)
    return iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]


LOOK_ALIKES: dict[str, Maker] = {
    "card-shaped, failing Luhn": _bad_luhn,
    "iban-shaped, failing mod 97": _bad_iban,
    "timestamp": lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
                           f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z",
    "unix epoch ms": lambda r: str(r.randint(1_600_000_000_000, 1_800_000_000_000)),
    "order number": lambda r: f"ORD-{r.randint(10**7, 10**8 - 1)}",
    "version": lambda r: f"v{r.randint(1, 30)}.{r.randint(0, 40)}.{r.randint(0, 99)}",
    "ipv4:port": lambda r: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}:{r.randint(1024, 65535)}",
    "sha hex": lambda r: "".join(r.choice("0123456789abcdef") for _ in range(40)),
    "pod name": lambda r: f"payments-api-{r.randint(10**9, 10**10 - 1)}-{''.join(r.choice('bcdfghjk') for _ in range(5))}",
    "price": lambda r: f"${r.randint(1, 99_999)}.{r.randint(0, 99):02d}",
    "byte count": lambda r: f"{r.randint(10**9, 10**12)} bytes",
    "at-mention": lambda r: f"@{r.choice(NAMES).replace('.', '')}-oncall",
    "docker image": lambda r: f"registry.example.com/api@sha256:{''.join(r.choice('0123456789abcdef') for _ in range(12))}",
}


def corpus(per_variant: int = 40, seed: int = 7) -> Iterator[PiiCase]:
    """`per_variant` cases of every positive variant and of every look-alike, in a fixed order."""
    rng = random.Random(seed)
    for variant, (kind, make) in POSITIVES.items():
        for _ in range(per_variant):
            value = make(rng)
            yield PiiCase(rng.choice(TEMPLATES).format(v=value), value, kind, variant)
    for variant, make in LOOK_ALIKES.items():
        for _ in range(per_variant):
            value = make(rng)
            yield PiiCase(rng.choice(TEMPLATES).format(v=value), "", None, f"look-alike/{variant}")
