"""Detection and redaction of personal data in request text: e-mail addresses, phone numbers, card numbers
(Luhn-checked), US social security numbers and IBANs (mod-97-checked).

Hand-written patterns rather than a dependency: the checks are a few lines each, and the NLP-based
detectors (Presidio and the like) pull in models we may not download at run time. Checksums keep false
positives down where the format has one (cards, IBANs); the others are deliberately conservative formats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PII_KINDS: tuple[str, ...] = ("email", "card", "iban", "ssn", "phone")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
# International (+country) or grouped national numbers with at least 9 digits; bare digit runs are not phones.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-])")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _card_ok(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone_ok(match: str) -> bool:
    if _SSN_SHAPE.fullmatch(match):  # an SSN-shaped number that failed the SSN checks is not a phone either
        return False
    digits = re.sub(r"\D", "", match)
    return 9 <= len(digits) <= 15 and (match.startswith(("+", "(")) or any(sep in match for sep in " .-"))


_DETECTORS: tuple[tuple[str, re.Pattern[str], object], ...] = (
    ("email", _EMAIL, None),
    ("iban", _IBAN, iban_valid),
    ("card", _CARD, _card_ok),
    ("ssn", _SSN, None),
    ("phone", _PHONE, _phone_ok),
)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str
    start: int
    end: int


def find_pii(text: str, kinds: Iterable[str] = PII_KINDS) -> list[PiiMatch]:
    """Non-overlapping matches in `text`, earlier detectors (e-mail, IBAN, card) winning overlaps."""
    wanted = set(kinds)
    taken: list[PiiMatch] = []
    for kind, pattern, check in _DETECTORS:
        if kind not in wanted:
            continue
        for m in pattern.finditer(text):
            if check is not None and not check(m.group()):  # type: ignore[operator]
                continue
            if any(m.start() < t.end and t.start < m.end() for t in taken):
                continue
            taken.append(PiiMatch(kind, m.start(), m.end()))
    return sorted(taken, key=lambda t: t.start)


def redact_text(text: str, kinds: Iterable[str] = PII_KINDS) -> tuple[str, dict[str, int]]:
    """`text` with each match replaced by `[REDACTED_<KIND>]`, and the count per kind."""
    matches = find_pii(text, kinds)
    if not matches:
        return text, {}
    out: list[str] = []
    counts: dict[str, int] = {}
    pos = 0
    for m in matches:
        out.append(text[pos:m.start])
        out.append(f"[REDACTED_{m.kind.upper()}]")
        counts[m.kind] = counts.get(m.kind, 0) + 1
        pos = m.end
    out.append(text[pos:])
    return "".join(out), counts
