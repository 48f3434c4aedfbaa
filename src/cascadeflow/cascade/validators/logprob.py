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

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

logger = logging.getLogger(__name__)

NAME = "logprob"
LOGPROB_FLOOR = -20.0


def check(request: Request, response: Response) -> Signal | None:
    """Available when the response carries token logprobs or a reported confidence; never guessed."""
    if response.logprobs:
        total = 0.0
        count = 0
        lowest = 0.0
        for tok in response.logprobs:
            lp = tok.logprob
            if math.isnan(lp):  # NaN: no information in this entry
                continue
            lp = min(0.0, max(LOGPROB_FLOOR, lp))
            total += lp
            count += 1
            lowest = min(lowest, lp)
        if count:
            score = math.exp(total / count)
            return Signal(NAME, score, f"geometric-mean token probability {score:.2f} over {count} tokens "
                                       f"(lowest {math.exp(lowest):.2f})")
    conf = response.confidence
    if conf is None:
        return None
    if math.isnan(conf) or not 0.0 <= conf <= 1.0:
        logger.warning("ignoring Response.confidence=%r: expected a probability in 0..1", conf)
        return None
    return Signal(NAME, float(conf), f"reported confidence {conf:.2f}")
