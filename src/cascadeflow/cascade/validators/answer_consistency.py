"""The answer-consistency signal: is the stated final answer the value the reasoning arrived at?

Applies when a worked answer marks a final answer (see `worked_answer`) and its reasoning computes at least
one value ("... = 42"). A model that slips between its working and its conclusion (computes 540, then writes
"#### 180") is more often wrong. Scores (no veto):
- 1.0: the final answer equals the last value computed in the reasoning (to two decimals);
- 0.6: it equals a number written elsewhere in the reasoning (an earlier step, or a restated figure);
- 0.2: it appears nowhere in the reasoning.
"""

from __future__ import annotations

from cascadeflow.cascade.validators import worked_answer
from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "answer_consistency"


def check(request: Request, response: Response) -> Signal | None:
    """Available when a final answer is marked after reasoning that computes a value; None otherwise."""
    draft = response.content or ""
    if not draft.strip():
        return None
    worked = worked_answer.read(request, draft)
    final = worked.final
    if final is None or not worked.computed:
        return None
    last = worked.computed[-1]
    if worked_answer.same(final, last):
        return Signal(NAME, 1.0, f"final answer {final:g} is the last computed value")
    if any(worked_answer.same(final, n) for n in worked.reasoning_numbers):
        return Signal(NAME, 0.6, f"final answer {final:g} is not the last computed value ({last:g}) but appears "
                                 f"in the reasoning")
    return Signal(NAME, 0.2, f"final answer {final:g} appears nowhere in the reasoning (last computed {last:g})")
