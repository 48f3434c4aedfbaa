"""The structure signal: empty, truncated, filtered, refused, non-answers, hedging, too short, looping."""

from __future__ import annotations

import itertools
import operator
import re
import zlib

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "structure"

# A refusal only counts when it opens a short answer: "I can't browse, but here is ..." can still help.
_REFUSAL = re.compile(
    r"^\W*(?:(?:i'?m |i am )?sorry[,.!]?\s*(?:but\s*)?)?(?:i|we)\s*(?:can(?:not|'?t)|won'?t|am unable to|'?m unable to|"
    r"am not able to|'?m not able to|must decline to|will not)\s+(?:help|assist|provide|do that|comply|answer|"
    r"fulfil+|complete|support|share|write|create|generate|give)|^\W*as an ai(?: language model)?,? i (?:can(?:not|'?t)|"
    r"am unable|don'?t)",
    re.IGNORECASE,
)
_NON_ANSWER = re.compile(
    r"^\W*(?:i (?:do not|don'?t) know|i'?m not sure|i am not sure|i have no idea|i (?:can(?:not|'?t)) "
    r"(?:determine|say|tell|know)|(?:there is |there's )?not enough information)\b|^\W*unknown\W*$",
    re.IGNORECASE,
)
# Counted with str.count on the lower-cased text: one C-level scan per phrase is far cheaper than a regex
# alternation tried at every position of a long answer.
HEDGE_PHRASES = (
    "i think", "i believe", "i guess", "not sure", "not entirely sure", "not certain", "possibly", "perhaps",
    "maybe", "probably", "might be", "may be ", "could be ", "it seems", "it appears", "i'm unsure",
    "hard to say", "difficult to say",
)
SHORT_ANSWER_CHARS = 240  # a refusal in a longer answer may be a caveat, not the answer
NON_ANSWER_CHARS = 80  # "I don't know the exact figure, but it is about 5" is a hedged answer, not a non-answer
LOOP_MIN_WORDS = 60
LOOP_NGRAM = 6
LOOP_SHARE = 0.5  # this share of repeated 6-word spans vetoes
LOOP_COMPRESSION = 0.35  # prefilter: prose compresses to ~0.5 of its size at zlib level 1; loops far lower


def _loop_ratio(text: str, lower: str) -> float | None:
    """Share of repeated word 6-grams in a long answer (None for short or plainly varied ones, including
    any whose share provably stays under LOOP_SHARE). `lower` is `text` lower-cased."""
    if len(text) < 4 * LOOP_MIN_WORDS:
        return None
    raw = text.encode("utf-8", "replace")
    if len(zlib.compress(raw, 1)) > LOOP_COMPRESSION * len(raw):
        return None  # varied text compresses poorly; a loop compresses to almost nothing
    words = lower.split()  # whitespace words: a loop repeats its punctuation too
    if len(words) < LOOP_MIN_WORDS:
        return None
    spans = len(words) - LOOP_NGRAM + 1
    # Cheap floors on the number of distinct 6-grams: when one already exceeds half the spans the share stays
    # under LOOP_SHARE, and the costlier 6-gram set is skipped (templated answers with varied numbers end here).
    if 2 * _first_span_floor(words, spans) > spans:
        return None
    # each distinct bigram but the last starts a distinct trigram, and so on: distinct 6-grams >= bigrams - 4
    if 2 * (len(set(itertools.pairwise(words))) - (LOOP_NGRAM - 2)) > spans:
        return None
    grams = zip(*(words[i:] for i in range(LOOP_NGRAM)))  # word 6-grams, built in C
    return 1.0 - len(set(grams)) / spans


def _first_span_floor(words: list[str], spans: int) -> int:
    """How many 6-word spans hold some word's first occurrence: each is the first of its kind (an earlier
    equal span would hold that word earlier), so this is a floor on the distinct 6-grams."""
    first = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))  # word -> index of its first use
    starts = sorted(first.values())
    starts.append(spans + LOOP_NGRAM - 1)  # the spans after the last first use form the final gap
    # between first uses at a < b, the spans a+1 .. b-6 hold none
    return spans - sum(gap - LOOP_NGRAM for gap in map(operator.sub, starts[1:], starts) if gap > LOOP_NGRAM)


def _veto(reason: str) -> Signal:
    return Signal(NAME, 0.0, reason, veto=True)


def _hard_failure(response: Response, text: str, lower: str, min_length: int) -> Signal | None:
    if response.finish_reason == "length":
        return _veto("cut off at the length limit (finish_reason=length)")
    if response.finish_reason == "content_filter":
        return _veto("stopped by the provider's content filter")
    if response.finish_reason == "error":
        return _veto("the provider reported an error finish")
    if not text and not response.tool_calls:
        return _veto("empty answer")
    if not text:
        return None
    head = text[:SHORT_ANSWER_CHARS]
    if len(text) <= SHORT_ANSWER_CHARS and _REFUSAL.search(head):
        return _veto(f"refusal: {head[:80]!r}")
    if len(text) <= NON_ANSWER_CHARS and _NON_ANSWER.search(head):
        return _veto(f"non-answer: {head[:80]!r}")
    if len(text) < min_length:
        return _veto(f"too short: {len(text)} characters, min_length={min_length}")
    loop = _loop_ratio(text, lower)
    if loop is not None and loop >= LOOP_SHARE:
        return _veto(f"repetition loop: {loop:.0%} of 6-word spans repeat")
    return None


def check(request: Request, response: Response, *, min_length: int = 0) -> Signal:
    """Always available: hard failures veto; hedging lowers the score; a clean answer scores 1.0."""
    text = (response.content or "").strip()
    lower = text.lower()
    failure = _hard_failure(response, text, lower, min_length)
    if failure is not None:
        return failure
    if not text:
        return Signal(NAME, 1.0, f"{len(response.tool_calls)} tool call(s), no text")
    hedges = sum(map(lower.count, HEDGE_PHRASES))
    if hedges:
        # density, not count: two "may be"s in a long explanation are normal, one in a short answer is not
        per_50_words = hedges / max(1.0, lower.count(" ") / 50)
        score = round(max(0.3, 1.0 - 0.25 * per_50_words), 3)
        return Signal(NAME, score, f"hedging: {hedges} hedge phrase(s)")
    return Signal(NAME, 1.0, "complete answer")
