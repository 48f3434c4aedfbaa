"""The answer-form signal: does a worked numeric answer state a final answer of a plausible form?

Applies when the question states at least one number and the draft works with numbers (it computes a value
with "=" or marks a final answer): a word problem answered step by step. Scores (no veto; the calibration
learns how much each is worth on your traffic):
- 1.0: a final answer is marked ("#### 42", `"answer": "42"`, `\\boxed{42}`, "The answer is 42") and its
  form fits the question;
- 0.3: no final answer is marked, so the reader (and any grader) must guess which number is meant;
- 0.2: a fractional answer ("7.5") to a question whose quantities are all whole numbers and that mentions no
  money, fraction or percentage (counts of people, apples, days come out whole);
- 0.7: a fractional answer where the question has fractions, percentages or money (plausible, less common);
- 0.3: a negative answer to a question with no negative quantity.
"""

from __future__ import annotations

from cascadeflow.cascade.validators import worked_answer
from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "answer_form"


def check(request: Request, response: Response) -> Signal | None:
    """Available for worked numeric answers to a question with numbers; None otherwise."""
    draft = response.content or ""
    if not draft.strip():
        return None
    worked = worked_answer.read(request, draft)
    if not worked.question_numbers or (worked.final is None and not worked.computed):
        return None
    final = worked.final
    if final is None:
        return Signal(NAME, 0.3, "no final answer is marked in a worked numeric answer")
    if final < 0 and all(n >= 0 for n in worked.question_numbers):
        return Signal(NAME, 0.3, f"negative final answer {final:g} to a question with no negative quantity")
    if not float(final).is_integer():
        if worked.question_has_fractions or worked.question_mentions_money:
            return Signal(NAME, 0.7, f"fractional final answer {final:g} (the question has fractions or money)")
        return Signal(NAME, 0.2, f"fractional final answer {final:g} to a question of whole quantities")
    return Signal(NAME, 1.0, f"final answer {final:g} is marked and has a plausible form")
