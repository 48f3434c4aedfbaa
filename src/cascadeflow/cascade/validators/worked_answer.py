"""Reading a worked numeric answer: the question's quantities, the draft's stated final answer, its computed values.

Shared by the answer-form, answer-consistency and quantity-coverage signals (this module is not a signal
itself). Everything here is a linear-time regex scan of the question and the draft; nothing is guessed: when
no final answer is marked, `final` is None and the signals that need it say so or stay absent.

Final-answer markers recognised, in this order: GSM8K's `#### 42`, a JSON `"answer": "42"` field,
LaTeX `\\boxed{42}`, and prose "the (final) answer is 42" / "Final answer: 42" / "Answer: 42". The last match
of the first marker kind found is the final answer; the text before it is the reasoning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cascadeflow.messages import Request

_NUMBER = r"-?\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)"
NUMBER = re.compile(rf"(?<![\w.]){_NUMBER}")
_FINAL_MARKERS = (
    re.compile(rf"####[ \t]*(?P<n>{_NUMBER})"),
    re.compile(rf"\"answer\"[ \t]*:[ \t]*\"?[ \t]*(?P<n>{_NUMBER})"),
    re.compile(rf"\\boxed\{{[ \t]*\\?(?P<n>{_NUMBER})"),
    # matched on the lower-cased draft; a literal start keeps the scan fast
    re.compile(rf"answer(?: is|:|(?<=final answer))[ \t]*:?[ \t]*\**[ \t]*\$?\\?(?P<n>{_NUMBER})"),
)
_PROSE_MARKER = _FINAL_MARKERS[-1]
_COMPUTED = re.compile(rf"(?<![<>!=])=(?!=)[ \t]*(?P<n>{_NUMBER})")
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_FRACTION = re.compile(r"\d+/\d+|\d\.\d|\d ?%|\bhalf\b|\bquarter\b|\bthirds?\b|\bpercent\b", re.IGNORECASE)
_MONEY = re.compile(r"\b(?:dollars?|cents?|euros?|pounds?)\b")  # on the lower-cased question
MAX_CHARS = 20_000  # longer drafts are read up to here: a worked answer is far shorter


def to_number(text: str) -> float | None:
    """A written number ("$1,200", "-3.5", ".75") as a float; None when it is not one."""
    cleaned = text.replace("$", "").replace(",", "").replace(" ", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


def same(a: float, b: float) -> bool:
    """Equal up to the rounding a written answer may show (two decimals), or a relative 1e-6."""
    return abs(a - b) <= max(0.005, 1e-6 * max(abs(a), abs(b)))


def numbers(text: str) -> list[float]:
    """Every number written in `text`, in order."""
    out = []
    for match in NUMBER.finditer(text):
        value = to_number(match.group(0))
        if value is not None:
            out.append(value)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkedAnswer:
    """What a draft states: its final answer (None: no marker), the reasoning before it, and the values it
    computed (the results written after "=" in the reasoning, in order)."""

    question_numbers: tuple[float, ...]  # distinct quantities of the question, code and examples left out
    question_has_fractions: bool  # decimals, fractions or percentages in the question
    question_mentions_money: bool
    final: float | None
    reasoning_numbers: tuple[float, ...]
    computed: tuple[float, ...]
    draft_numbers: tuple[float, ...]  # every number of the draft, final answer included


def question_text(request: Request) -> str:
    """The last user turn's text, without code fences and `inline code` (instructions' examples live there)."""
    for message in reversed(request.messages):
        if message.role == "user" and message.text.strip():
            return _CODE.sub(" ", message.text[:MAX_CHARS])
    return ""


def _final(text: str) -> tuple[float, int] | None:
    lowered = text.lower()
    for marker in _FINAL_MARKERS:
        # lower-casing keeps positions for ASCII text; otherwise the prose marker is not read (rather than
        # cutting the reasoning at a shifted position)
        haystack = lowered if marker is _PROSE_MARKER else text
        if marker is _PROSE_MARKER and ("answer" not in lowered or len(lowered) != len(text)):
            continue
        last = None
        for last in marker.finditer(haystack):
            pass
        if last is not None:
            value = to_number(last.group("n"))
            if value is not None:
                return value, last.start()
    return None


@lru_cache(maxsize=256)
def _read(question: str, draft: str) -> WorkedAnswer:
    distinct: list[float] = []
    for value in numbers(question):
        if not any(same(value, seen) for seen in distinct):
            distinct.append(value)
    final = _final(draft)
    cut = len(draft) if final is None else final[1]
    reasoning = draft[:cut]
    computed = []
    if "=" in reasoning:
        for match in _COMPUTED.finditer(reasoning):
            number = to_number(match.group("n"))
            if number is not None:
                computed.append(number)
    written = [(m.start(), to_number(m.group(0))) for m in NUMBER.finditer(draft)]
    in_reasoning = tuple(v for at, v in written if v is not None and at < cut)
    money = any(sign in question for sign in "$€£") or bool(_MONEY.search(question.lower()))
    return WorkedAnswer(question_numbers=tuple(distinct),
                        question_has_fractions=bool(_FRACTION.search(question)),
                        question_mentions_money=money, final=None if final is None else final[0],
                        reasoning_numbers=in_reasoning, computed=tuple(computed),
                        draft_numbers=tuple(v for _, v in written if v is not None))


def read(request: Request, draft: str) -> WorkedAnswer:
    """Parse the question of `request` and the draft text (cached: the three signals share one parse)."""
    return _read(question_text(request), draft[:MAX_CHARS])
