"""Detection and redaction of personal data in request text: e-mail addresses (internationalised too), phone
numbers (E.164 and grouped), card numbers (Luhn-checked, groups split by spaces, dots, dashes or line breaks),
US social security numbers and IBANs (mod-97-checked, either case).

Hand-written patterns rather than a dependency: the checks are a few lines each, and the NLP-based
detectors (Presidio and the like) pull in models we may not download at run time. Checksums keep false
positives down where the format has one (cards, IBANs); the others are deliberately conservative formats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

PII_KINDS: tuple[str, ...] = ("email", "card", "iban", "ssn", "phone")

# Unicode letters and digits on both sides (internationalised addresses, RFC 6531); the top-level domain is
# letters only, so version strings and file names with an @ are not taken.
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
# A card number's digit groups may be split by a space, a no-break or thin space, a dash, a dot or a line break;
# a digit run inside a word (a hex digest, an id) is not one.
_CARD = re.compile(r"(?<![\w+-])\d(?:(?:[.\-]|\s{1,2})?\d){12,18}(?![\w-])")
# Either case, compact or in groups of four; a match may run into the next word (`..0130 00 and`), so the
# check trims trailing groups until the checksum holds.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ \u00a0]?[A-Za-z0-9]{4}){2,7}(?:[ \u00a0]?[A-Za-z0-9]{1,4})?\b")
_IP_V4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
# E.164 written compactly (+15551234567), or international (+country) / grouped national numbers with at least
# 9 digits; bare digit runs without a + are not phones.
_PHONE = re.compile(r"(?<![\w+])\+[1-9]\d{7,14}(?![\w-])"
                    r"|(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-])")


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
    compact = re.sub(r"\s", "", text).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


# A check takes a pattern's match and returns how many of its leading characters are the value (0: none).
Check = Callable[[str], int]


def _whole(match: str) -> int:
    return len(match)


def _iban_length(match: str) -> int:
    candidate = match
    while len(candidate.replace(" ", "").replace("\u00a0", "")) >= 15:
        if iban_valid(candidate):
            return len(candidate)
        cut = max(candidate.rfind(" "), candidate.rfind("\u00a0"))
        if cut < 0:
            return 0
        candidate = candidate[:cut]
    return 0


def _card_length(match: str) -> int:
    digits = re.sub(r"\D", "", match)
    # written without separators, a card has 15-19 digits: 13-14 digit runs are mostly epoch milliseconds and ids
    shortest = 13 if len(digits) != len(match) else 15
    return len(match) if shortest <= len(digits) <= 19 and luhn_valid(digits) else 0


def _phone_length(match: str) -> int:
    if _SSN_SHAPE.fullmatch(match) or _IP_V4.fullmatch(match):  # an SSN-shaped number that failed the SSN
        return 0  # checks, or an IPv4 address, is not a phone
    digits = re.sub(r"\D", "", match)
    grouped = match.startswith(("+", "(")) or any(sep in match for sep in " .-")
    return len(match) if 9 <= len(digits) <= 15 and grouped else 0


_DETECTORS: tuple[tuple[str, re.Pattern[str], Check], ...] = (
    ("email", _EMAIL, _whole),
    ("iban", _IBAN, _iban_length),
    ("card", _CARD, _card_length),
    ("ssn", _SSN, _whole),
    ("phone", _PHONE, _phone_length),
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
            length = check(m.group())
            if not length:
                continue
            start, end = m.start(), m.start() + length
            if any(start < t.end and t.start < end for t in taken):
                continue
            taken.append(PiiMatch(kind, start, end))
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
