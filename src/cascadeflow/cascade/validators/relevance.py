"""The relevance signal: offline query-answer relevance from the question's content words the answer shares.

Coverage = the weighted share of the last user turn's content words (stop words dropped, lightly stemmed)
that the answer also uses, taken as the better of the whole turn and its question sentence(s). Weights come
from the prompt itself: a word the question repeats counts more (1 + ln tf), a word spread over the system
prompt and earlier turns counts less (idf over their sentences). Score = 0.05 + 0.95 * min(1, coverage /
FULL_COVERAGE). Short answers and medium-length fragments (under LONG_ANSWER_WORDS content words, not a statement with its own
subject) get no word-overlap test, since "Former Chairman of the Federal Reserve" rightly answers a question
it shares no word with: a number answering a numeric question, an option letter answering a multiple-choice
question and yes/no to a yes/no question score 1.0; anything else yields no signal rather than a made-up score.
"""

from __future__ import annotations

import math
import re
import string

from cascadeflow.cascade.validators.base import Signal
from cascadeflow.messages import Request, Response

NAME = "relevance"
FULL_COVERAGE = 0.4
SHORT_ANSWER_WORDS = 3
SHORT_ANSWER_CHARS = 40
FULL_COVERAGE_MEDIUM = 0.2  # a one-line answer cannot echo much of the question: one key word is enough
LONG_ANSWER_WORDS = 13  # from this many content words on, missing overlap is evidence in itself

_STOP = frozenset("""
a about above after again against all also am an and any are arent as at be because been before being below
between both but by can cant cannot could couldnt did didnt do does doesnt doing dont down during each
few for from further get gets give given got had hadnt has hasnt have havent having he her here hers
herself him himself his how i im if in into is isnt it its its itself just let like me more most much must
my myself need no nor not now of off on once only or other ought our ours ourselves out over own please same
she should shouldnt so some such tell than that thats the their theirs them themselves then there these
they this those through to too under until up us use used using very want was wasnt we were werent what
when where which while who whom why will with wont would wouldnt you your yours yourself yourselves
explain describe show write give make know think say one two way thing things answer question following
many
""".split())  # noqa: SIM905 (a word list reads better as text)
# Punctuation becomes a space and apostrophes vanish ("don't" -> "dont"), then str.split: several times
# cheaper than a tokenising regex on a long answer.
_TO_WORDS = str.maketrans({**{c: " " for c in string.punctuation if c != "'"}, "'": None, "\u2019": None,
                           "\u2018": None, "\u201c": " ", "\u201d": " ", "\u2014": " ", "\u2013": " "})
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
# A medium-length answer with no shared word is called off-topic only when it is a statement with its own
# subject ("The weather in Tokyo is sunny today."); a fragment ("Former Chairman of the Federal Reserve") or a
# pronoun-led reply ("They sink and may suffocate") answers without echoing the question.
_STATEMENT = re.compile(
    r"^\W*(?:the|a|an|this|that|these|those)\b"
    r"[^.!?]*?\b(?:is|are|was|were|will|would|has|have|had|can|could|does|do|did|should|may|might|must)\b",
    re.IGNORECASE,
)
# Scripts written without spaces between words: splitting on spaces finds no words to compare, so no signal.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\u0e00-\u0e7f]")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ness", "ment", "ers", "er", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """Light stemming: one common suffix off, then the first 6 letters (congestion/congested -> conges)."""
    if len(word) > 4 and word.endswith(_SUFFIXES):
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
    return word[:6]


# word -> stem ("" for single letters, which carry no topic). A service sees the same few thousand words over
# and over, so the memo makes stemming a dict lookup done in C (map over the set of words).
_STEMS: dict[str, str] = {}
_STEMS_MAX = 50_000  # about 5 MB; past it new words are stemmed without being remembered


def _stem_or_drop(word: str) -> str:
    return stem(word) if len(word) > 1 or word.isdigit() else ""


def _remember(words: set[str]) -> None:
    for w in words.difference(_STEMS):  # a dict argument is probed per word, not copied
        if len(_STEMS) >= _STEMS_MAX:
            return
        _STEMS[w] = _stem_or_drop(w)


def _lookup(word: str) -> str:
    found = _STEMS.get(word)
    return _stem_or_drop(word) if found is None else found


def _stems_of(words: set[str]) -> set[str]:
    _remember(words)
    # Words past the memo's size bound are stemmed without being remembered.
    out = {_STEMS[w] if w in _STEMS else _stem_or_drop(w) for w in words}
    out.discard("")
    return out


def term_set(text: str) -> set[str]:
    """The distinct content terms of `text`: words de-duplicated (and stop words dropped) before stemming."""
    words = set(text.lower().translate(_TO_WORDS).split())
    words -= _STOP
    return _stems_of(words)


def content_terms(text: str) -> list[str]:
    """Stemmed words of `text` in order, without stop words and single letters."""
    stop = _STOP
    words = [w for w in text.lower().translate(_TO_WORDS).split() if w not in stop]
    stems = list(map(_STEMS.get, words))
    if None in stems:
        _remember(set(words))
        stems = list(map(_lookup, words))
    return [t for t in stems if t]


def _last_user_text(request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and message.text.strip():
            return message.text
    return ""


def _sentence_terms(question: str) -> list[tuple[str, list[str]]]:
    """Each sentence of `question` with its content terms. The split is at whitespace, so together they are
    the whole question's terms: the question is tokenised once for its weights and its question sentences."""
    return [(sentence, content_terms(sentence)) for sentence in _SENTENCE.split(question)]


def _weights(request: Request, question: str, sentences: list[tuple[str, list[str]]]) -> dict[str, float]:
    """Weight of each question term: words the question repeats count more (1 + ln tf); words spread over the
    system prompt and earlier turns count less (idf over their sentences)."""
    tf: dict[str, int] = {}
    for _, terms in sentences:
        for term in terms:
            tf[term] = tf.get(term, 0) + 1
    context = [set(content_terms(sentence)) for m in request.messages
               if m.role in ("system", "user", "assistant") and m.text != question
               for sentence in _SENTENCE.split(m.text) if sentence.strip()]
    n = len(context)
    df: dict[str, int] = {}
    for doc in context:
        for term in doc:
            if term in tf:
                df[term] = df.get(term, 0) + 1
    unseen = math.log(2.0 + n)  # idf of a term no context sentence uses: the common case
    return {term: (1.0 if count == 1 else 1.0 + math.log(count))
            * (unseen if term not in df else math.log(1.0 + (n + 1) / (df[term] + 1)))
            for term, count in tf.items()}


def _coverage(weights: dict[str, float], answer_terms: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in answer_terms) / total if total else 0.0


def _best_coverage(weights: dict[str, float], answer_terms: set[str], question: str,
                   sentences: list[tuple[str, list[str]]]) -> float:
    """Coverage of the whole turn or of its best question sentence, whichever is higher."""
    coverage = _coverage(weights, answer_terms)
    for ask, terms in sentences:
        if "?" not in ask or ask == question:
            continue  # not a question, or a one-sentence question whose weights are the turn's, already counted
        ask_weights = {t: weights[t] for t in terms if t in weights}
        if ask_weights:
            coverage = max(coverage, _coverage(ask_weights, answer_terms))
    return coverage


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
    """Available for text answers to a question with content words; short answers are judged by their type."""
    answer = (response.content or "").strip()
    question = _last_user_text(request)
    if not answer or not question or _UNSPACED.search(question) or _UNSPACED.search(answer[:200]):
        return None
    answer_terms = term_set(answer)
    if len(answer_terms) <= SHORT_ANSWER_WORDS and len(answer) <= SHORT_ANSWER_CHARS:
        return _short_answer(question, answer)
    sentences = _sentence_terms(question)
    weights = _weights(request, question, sentences)
    if not weights:
        return None
    coverage = _best_coverage(weights, answer_terms, question, sentences)
    full = FULL_COVERAGE
    if len(answer_terms) < LONG_ANSWER_WORDS:
        if coverage == 0.0:
            typed = _short_answer(question, answer)
            if typed is not None or not _STATEMENT.match(answer):
                return typed
        full = FULL_COVERAGE_MEDIUM
    score = 0.05 + 0.95 * min(1.0, coverage / full)
    if coverage == 0.0:
        return Signal(NAME, score, "off-topic: the answer shares no content word with the question")
    return Signal(NAME, round(score, 4), f"answer covers {coverage:.0%} of the question's weighted content words")
