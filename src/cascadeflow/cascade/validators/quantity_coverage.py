"""The quantity-coverage signal: the share of the question's stated quantities that a worked answer uses.

Wrong reasoning on a word problem often ignores a given quantity ("a computer, 2 monitors and a printer for
$2,400 ... the computer cost $1,100" answered without the 1,100). Applies when the question states at least
two distinct numbers (numbers in code and `inline code`, e.g. an instruction's example, are left out) and the
draft works with numbers (computes a value or marks a final answer). Score = the share of the question's
distinct numbers that appear anywhere in the draft (no veto: some given numbers are distractors, which is
why the calibration, not a fixed rule, decides what a low share is worth).
"""

from __future__ import annotations

from cascadeflow.cascade.validators import worked_answer
from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "quantity_coverage"


def check(request: Request, response: Response) -> Signal | None:
    """Available for worked numeric answers to a question with two or more numbers; None otherwise."""
    draft = response.content or ""
    if not draft.strip():
        return None
    worked = worked_answer.read(request, draft)
    given = worked.question_numbers
    if len(given) < 2 or (worked.final is None and not worked.computed):
        return None
    written = worked.draft_numbers
    unused = [g for g in given if not any(worked_answer.same(g, n) for n in written)]
    share = 1.0 - len(unused) / len(given)
    if not unused:
        return Signal(NAME, 1.0, f"uses all {len(given)} quantities of the question")
    shown = ", ".join(f"{u:g}" for u in unused[:5])
    return Signal(NAME, round(share, 4), f"uses {len(given) - len(unused)} of {len(given)} quantities of the "
                                         f"question; unused: {shown}")
