"""The answer-length signal: how long the draft is relative to the question, as a 0..1 score.

Score = 1 / (1 + ratio / 2), ratio = draft characters / question characters (1.0 for an empty draft is never
reached: an empty draft is left to `structure`). A draft as long as its question scores 0.67, three times
as long 0.4. Long, winding answers to a short question are more often wrong in recorded math and reasoning
traffic, but length alone never proves anything: this is a soft signal (off by default) whose weight, and
even its sign, the calibration learns from labelled outcomes. Applies when both the question and the draft
have text.
"""

from __future__ import annotations

from cascadeflow.cascade.validators import worked_answer
from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "answer_length"


def check(request: Request, response: Response) -> Signal | None:
    """Available when the question and the draft both have text; None otherwise."""
    draft = (response.content or "").strip()
    question = worked_answer.question_text(request).strip()
    if not draft or not question:
        return None
    ratio = len(draft) / len(question)
    return Signal(NAME, round(1.0 / (1.0 + ratio / 2.0), 4), f"answer is {ratio:.1f}x the question's length")
