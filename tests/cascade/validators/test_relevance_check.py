"""Relevance signal: off-topic answers score near zero; bare answers to numeric/option/yes-no questions pass."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascadeflow.cascade.validators import relevance
from cascadeflow.messages import Message, Response, build_request

TOKYO = "The weather in Tokyo is sunny today."


def resp(text: str) -> Response:
    return Response(content=text, model="m", provider="p")


@pytest.mark.parametrize("question", [
    "What is the capital of Australia?",
    "How do I reverse a list in Python?",
    "Summarise the root cause of yesterday's database outage.",
    "Explain how TCP congestion control reacts to packet loss.",
])
def test_tokyo_weather_answer_is_off_topic(question):
    sig = relevance.check(build_request(question), resp(TOKYO))
    assert sig is not None and sig.score < 0.1 and "off-topic" in sig.reason


def test_on_topic_answer_scores_high():
    sig = relevance.check(build_request("How do I reverse a list in Python?"),
                          resp("Use my_list.reverse() to reverse the list in place, or reversed(my_list)."))
    assert sig.score == 1.0


def test_light_stemming_matches_word_forms():
    sig = relevance.check(build_request("Why was the deployment failing?"),
                          resp("The deploy failed because the container image tag did not exist."))
    assert sig.score > 0.5


@pytest.mark.parametrize(("question", "answer"), [
    ("Natalia sold 48 clips in April and half as many in May. How many clips did she sell altogether?", "72"),
    ("What is 17 * 23?", "391"),
    ("Calculate the total cost of 3 items at $12.", "$36"),
])
def test_bare_number_to_a_numeric_question_is_relevant(question, answer):
    sig = relevance.check(build_request(question), resp(answer))
    assert sig is not None and sig.score == 1.0


@pytest.mark.parametrize("answer", ["B", "(C)", "The answer is D", "b)"])
def test_bare_option_letter_to_a_multiple_choice_question_is_relevant(answer):
    question = "Which gas do plants absorb?\nA) Oxygen\nB) Carbon dioxide\nC) Nitrogen\nD) Helium"
    sig = relevance.check(build_request(question), resp(answer))
    assert sig is not None and sig.score == 1.0


def test_yes_to_a_yes_no_question_is_relevant():
    assert relevance.check(build_request("Is the service healthy?"), resp("Yes.")).score == 1.0


def test_other_very_short_answers_give_no_signal_rather_than_a_guess():
    assert relevance.check(build_request("What is the capital of France?"), resp("Paris.")) is None


def test_uses_the_last_user_turn_not_the_system_prompt():
    req = build_request([Message.system("You are an SRE assistant for the payments team."),
                         Message.user("Which metric shows memory pressure on the cache nodes?")])
    on_topic = relevance.check(req, resp("Watch the eviction rate and used memory of the cache nodes."))
    off_topic = relevance.check(req, resp("The payments team is planning the next sprint on Friday."))
    assert on_topic.score > 0.9 and off_topic.score < 0.1


def test_no_signal_without_text_or_question():
    assert relevance.check(build_request("What is the capital of France?"), resp("")) is None
    assert relevance.check(build_request("Why?"), resp("Because the cache was cold after the deploy.")) is None


def test_stem_reduces_word_forms_to_one_key():
    assert relevance.stem("congestion") == relevance.stem("congested")
    assert relevance.stem("failing") == relevance.stem("failed")


@pytest.mark.parametrize(("question", "answer"), [
    ("Ben Bernanke got a PhD from MIT. What governmental position did he hold?", "Former Chairman of the Federal Reserve."),
    ("What do ostriches do when threatened?", "Run away at high speeds."),
])
def test_short_fragments_that_answer_without_echoing_give_no_signal(question, answer):
    assert relevance.check(build_request(question), resp(answer)) is None


def test_long_answer_without_overlap_is_off_topic_even_without_a_statement_opening():
    answer = ("Sunny skies over Tokyo all week, light winds from the east, highs near twenty degrees, humidity "
              "moderate, cherry blossoms blooming in the parks, trains running normally, markets open late.")
    assert relevance.check(build_request("How do I rotate the TLS certificate on the load balancer?"),
                           resp(answer)).score < 0.1


def test_scripts_without_spaces_give_no_signal():
    assert relevance.check(build_request("東京の天気はどうですか?"), resp("今日の東京は晴れです。気温は二十度です。")) is None


WORDS = st.sampled_from(["database", "latency", "cache", "deploy", "replica", "timeout", "kernel", "queue",
                         "certificate", "gateway", "billing", "backup", "cluster", "memory", "disk", "alert"])


@given(st.lists(WORDS, min_size=2, max_size=8, unique=True), st.lists(WORDS, min_size=13, max_size=30))
def test_an_answer_that_uses_every_question_word_scores_one(question_words, filler):
    question = "Why did the " + " ".join(question_words) + " fail?"
    answer = "The " + " ".join(question_words) + " failed because " + " ".join(filler) + "."
    sig = relevance.check(build_request(question), resp(answer))
    assert sig is not None and sig.score == 1.0


def test_terms_are_the_same_when_the_stem_memo_is_full(monkeypatch):
    text = "The congested gateway was failing repeatedly after the deploy."
    expected = relevance.term_set(text)
    monkeypatch.setattr(relevance, "_STEMS", {})
    monkeypatch.setattr(relevance, "_STEMS_MAX", 2)
    assert relevance.term_set(text) == expected
    assert relevance.content_terms(text) == [relevance.stem(w) for w in
                                             ("congested", "gateway", "failing", "repeatedly", "deploy")]
    assert len(relevance._STEMS) == 2



@given(st.lists(st.sampled_from(list("ab Σσ.!?\n\t'-\u2003") + ["db", "Don", "ΟΔΟΣ", "disk"]), max_size=30))
def test_the_question_tokenised_by_sentence_has_the_whole_questions_terms(pieces):
    question = "".join(pieces)
    by_sentence = [term for _, terms in relevance._sentence_terms(question) for term in terms]
    assert by_sentence == relevance.content_terms(question)
