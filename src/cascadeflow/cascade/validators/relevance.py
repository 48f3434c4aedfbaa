"""The relevance signal: offline query-answer relevance from shared content words, weighted by the prompt's own idf.

Coverage = the idf-weighted share of the question's content words (stop words dropped, lightly stemmed)
that the answer also uses, taken as the better of the whole last user turn and its question sentence(s).
Score = 0.05 + 0.95 * min(1, coverage / FULL_COVERAGE). idf comes from the prompt itself: each sentence of
the conversation is a document, so words repeated all over a long prompt count less than the specific ask.
Short answers get no word-overlap test: a number answering a numeric question, an option letter answering a
multiple-choice question and yes/no to a yes/no question score 1.0; any other very short answer yields no
signal (too little text to judge), rather than a made-up score.
"""

from __future__ import annotations

import math
import re

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "relevance"
FULL_COVERAGE = 0.4
SHORT_ANSWER_WORDS = 3
SHORT_ANSWER_CHARS = 40

_STOP = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further get gets give given got had hadn't has hasn't have haven't having he her here hers
herself him himself his how i i'm if in into is isn't it it's its itself just let like me more most much must
my myself need no nor not now of off on once only or other ought our ours ourselves out over own please same
she should shouldn't so some such tell than that that's the their theirs them themselves then there these
they this those through to too under until up us use used using very want was wasn't we were weren't what
when where which while who whom why will with won't would wouldn't you your yours yourself yourselves
explain describe show write give make know think say one two way thing things answer question following
""".split())  # noqa: SIM905 (a word list reads better as text)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"(?<=[.!?\n])\s+")
_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?%?")
_NUMERIC_ASK = re.compile(
    r"\b(?:how (?:many|much|long|far|old|fast|often)|what (?:is|was) the (?:total|sum|number|amount|value|"
    r"cost|price|percentage|average|difference|product|result)|calculate|compute|solve|evaluate|"
    r"what percent(?:age)?)\b|\d\s*[-+*/x×÷^]\s*\d",
    re.IGNORECASE,
)
_OPTIONS = re.compile(r"(?:^|\n|\s)\(?([A-Ja-j])[).:]\s+\S", re.MULTILINE)
_OPTION_ANSWER = re.compile(r"^\W*(?:(?:the )?(?:answer|option|choice)(?: is)?:?\s*)?\(?([A-Ja-j])\b[).:]?", re.IGNORECASE)
_YES_NO_ASK = re.compile(r"^\s*(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had)\b",
                         re.IGNORECASE | re.MULTILINE)
_YES_NO = re.compile(r"^\W*(?:yes|no|true|false|correct|incorrect)\b", re.IGNORECASE)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ness", "ment", "ers", "er", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """Light stemming: one common suffix off, then the first 6 letters (congestion/congested -> conges)."""
    if len(word) > 4:
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
    return word[:6]


def content_terms(text: str) -> list[str]:
    return [stem(w) for w in _TOKEN.findall(text.lower()) if w not in _STOP and (len(w) > 1 or w.isdigit())]


def _last_user_text(request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.text.strip():
            return message.text
    return ""


def _idf(request: Request) -> tuple[dict[str, float], int]:
    docs: list[set[str]] = []
    for message in request.messages:
        if message.role in ("user", "system", "assistant"):
            docs.extend(set(content_terms(s)) for s in _SENTENCE.split(message.text) if s.strip())
    df: dict[str, int] = {}
    for doc in docs:
        for term in doc:
            df[term] = df.get(term, 0) + 1
    n = max(1, len(docs))
    return {t: math.log(1 + n / c) for t, c in df.items()}, n


def _coverage(query_terms: set[str], answer_terms: set[str], idf: dict[str, float]) -> float:
    total = sum(idf.get(t, 1.0) for t in query_terms)
    hit = sum(idf.get(t, 1.0) for t in query_terms if t in answer_terms)
    return hit / total if total else 0.0


def _short_answer(question: str, answer: str) -> Signal | None:
    if _NUMBER.search(answer) and _NUMERIC_ASK.search(question):
        return Signal(NAME, 1.0, f"bare number {answer.strip()[:20]!r} to a numeric question")
    letter = _OPTION_ANSWER.match(answer)
    if letter and letter.group(1).upper() in {m.upper() for m in _OPTIONS.findall(question)}:
        return Signal(NAME, 1.0, f"option {letter.group(1).upper()} to a multiple-choice question")
    if _YES_NO.match(answer) and _YES_NO_ASK.search(question):
        return Signal(NAME, 1.0, "yes/no to a yes/no question")
    return None


def check(request: Request, response: Response) -> Signal | None:
    """Available for text answers to a question with content words; very short answers are judged by type."""
    answer = (response.content or "").strip()
    question = _last_user_text(request)
    if not answer or not question:
        return None
    answer_terms = content_terms(answer)
    if len(answer_terms) <= SHORT_ANSWER_WORDS and len(answer) <= SHORT_ANSWER_CHARS:
        return _short_answer(question, answer)
    query_terms = set(content_terms(question))
    if not query_terms:
        return None
    idf, _ = _idf(request)
    answer_set = set(answer_terms)
    asks = [s for s in _SENTENCE.split(question) if "?" in s]
    coverage = _coverage(query_terms, answer_set, idf)
    for ask in asks:
        ask_terms = set(content_terms(ask))
        if ask_terms:
            coverage = max(coverage, _coverage(ask_terms, answer_set, idf))
    score = 0.05 + 0.95 * min(1.0, coverage / FULL_COVERAGE)
    if coverage == 0.0:
        return Signal(NAME, score, "off-topic: the answer shares no content word with the question")
    return Signal(NAME, round(score, 4), f"answer covers {coverage:.0%} of the question's weighted content words")
