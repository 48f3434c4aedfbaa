"""The self-correction signal: a draft that revises itself mid-answer ("wait", "I made a mistake", "let me
recalculate", "however"), and so is one that only estimates ("approximately").

Applies to answers of at least MIN_WORDS words (shorter ones have no reasoning to revise). Score 1.0 when
no revision or estimation marker is present, 0.4 when one is (no veto: a model that catches and fixes its
own slip may still be right; the calibration learns how often on your traffic). The reason quotes the marker.
"""

from __future__ import annotations

import re

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "self_correction"
MIN_WORDS = 30
MAX_CHARS = 20_000
_MARKERS = re.compile(
    r"\b(?:wait|actually|oops|my mistake|made (?:a|an) (?:mistake|error)|mistake|incorrect|re-?calculate|"
    r"re-?evaluate|reconsider|let(?:'s| me| us) re\w+|correction|however|but this|approximately|roughly)\b", re.IGNORECASE)


def check(request: Request, response: Response) -> Signal | None:
    """Available for answers of MIN_WORDS words or more; None for short answers and empty drafts."""
    draft = (response.content or "")[:MAX_CHARS]
    if len(draft.split()) < MIN_WORDS:
        return None
    found = _MARKERS.search(draft)
    if found is None:
        return Signal(NAME, 1.0, "no self-correction or estimate in the answer")
    return Signal(NAME, 0.4, f"the answer revises itself or estimates ({found.group(0)!r})")
