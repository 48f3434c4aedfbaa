"""The logprob signal: the model's own confidence, from token logprobs or a confidence the source reported.

Score = geometric-mean token probability, exp(mean logprob), over the answer's tokens. It is the per-token
probability the whole answer had under the model, normalised for length, so long and short answers compare.
A logprob of -inf (a token the model gave no mass, seen with sampling) is clamped to LOGPROB_FLOOR so one
token cannot zero the whole answer; NaN entries are skipped. With no logprobs, `Response.confidence` (a
probability in 0..1 the source reported itself, e.g. a recorded replay value) is used; with neither, the
signal is absent.
"""

from __future__ import annotations

import logging
import math
import operator

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

logger = logging.getLogger(__name__)

NAME = "logprob"
LOGPROB_FLOOR = -20.0
_LOGPROB = operator.attrgetter("logprob")


def _geometric_mean(logprobs: list[float]) -> tuple[float, int, float]:
    """(exp(mean clamped logprob), tokens used, lowest clamped logprob); sums in C when nothing needs fixing."""
    lowest = min(logprobs)
    in_range = lowest >= LOGPROB_FLOOR and max(logprobs) <= 0.0
    total = sum(logprobs) if in_range else math.nan
    if math.isnan(total):
        clean = [min(0.0, max(LOGPROB_FLOOR, lp)) for lp in logprobs if not math.isnan(lp)]
        if not clean:
            return 0.0, 0, 0.0
        lowest, total, logprobs = min(clean), sum(clean), clean
    return math.exp(total / len(logprobs)), len(logprobs), lowest


def check(request: Request, response: Response) -> Signal | None:
    """Available when the response carries token logprobs or a reported confidence; never guessed."""
    if response.logprobs:
        score, count, lowest = _geometric_mean(list(map(_LOGPROB, response.logprobs)))
        if count:
            return Signal(NAME, score, f"geometric-mean token probability {score:.2f} over {count} tokens "
                                       f"(lowest {math.exp(lowest):.2f})")
    conf = response.confidence
    if conf is None:
        return None
    if math.isnan(conf) or not 0.0 <= conf <= 1.0:
        logger.warning("ignoring Response.confidence=%r: expected a probability in 0..1", conf)
        return None
    return Signal(NAME, float(conf), f"reported confidence {conf:.2f}")
