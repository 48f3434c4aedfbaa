"""The pre-flight input-token bound, checked against a real tokenizer available offline (SmolLM2's GGUF).

No other tokenizer file ships with the installed packages (`tokenizers`, `tiktoken` and `transformers` are not
installed, and tiktoken would download its files), so SmolLM2's byte-level BPE is the real reference here.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cascadeflow.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
from cascadeflow.providers.local import LocalTokenizer
from cascadeflow.tokens import IMAGE_TOKENS, estimate_input_tokens, message_tokens_upper, text_tokens_upper

pytestmark = pytest.mark.local_model

# Adversarial text: digits and punctuation (often one token per character), whitespace runs, accents, CJK,
# emoji (several bytes, sometimes several tokens), combining marks, and chat-template look-alikes.
PIECES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40),
    st.text(alphabet="0123456789", max_size=40),
    st.text(alphabet="!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", max_size=40),
    st.text(alphabet=" \t\n\r\u00a0\u3000", max_size=40),
    st.text(alphabet="éüßñçøå日本語中文한국어😀🚀👩‍💻\u0301\u200d", max_size=30),
    st.sampled_from(["<|im_start|>", "<|im_end|>", "<|endoftext|>", "assistant\n", "```json\n{}```"]),
)
TEXT = st.lists(PIECES, max_size=8).map("".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tokenizer() -> LocalTokenizer:
    return LocalTokenizer()


@SETTINGS
@given(text=TEXT)
@example(text="1234567890" * 20)
@example(text=" " * 200)
@example(text="\n\n\t \u3000" * 30)
@example(text="😀" * 50)
def test_text_bound_is_at_least_the_real_count(tokenizer: LocalTokenizer, text: str) -> None:
    assert text_tokens_upper(text) >= tokenizer.count_text(text)


@st.composite
def chats(draw: st.DrawFn) -> list[Message]:
    turns = draw(st.lists(st.tuples(st.sampled_from(["user", "assistant", "tool"]), TEXT), min_size=1,
                          max_size=5))
    messages = [Message(role, text) for role, text in turns]  # type: ignore[arg-type]
    if draw(st.booleans()):
        messages.insert(0, Message.system(draw(TEXT)))
    return messages


@SETTINGS
@given(messages=chats())
@example(messages=[Message.user("hi")])  # the template adds its default system turn here
@example(messages=[Message.user("")])
@example(messages=[Message.system(""), Message.user("")])
def test_chat_bound_covers_the_rendered_template(tokenizer: LocalTokenizer, messages: list[Message]) -> None:
    assert estimate_input_tokens(messages) >= tokenizer.count_messages(messages)


def test_chat_bound_covers_tool_calls_and_multi_part_content(tokenizer: LocalTokenizer) -> None:
    messages = [
        Message.system("You triage alerts."),
        Message.user([TextPart("disk at 91% on db-1;"), TextPart(" what now?")]),
        Message.assistant(None, [ToolCall("c1", "runbook_lookup", '{"alert": "disk_full", "host": "db-1"}')]),
        Message.tool("c1", "1. check /var/log growth 2. rotate logs"),
    ]
    assert estimate_input_tokens(messages) >= tokenizer.count_messages(messages)


def test_bound_is_loose_but_not_absurd_for_prose(tokenizer: LocalTokenizer) -> None:
    prose = ("The checkout service returned HTTP 503 for twelve minutes after a deploy; the database "
             "connection pool was exhausted because the new release doubled the number of workers. ") * 20
    messages = [Message.system("Summarise the incident."), Message.user(prose)]
    real = tokenizer.count_messages(messages)
    bound = estimate_input_tokens(messages)
    assert real <= bound <= 8 * real  # ~4-5 bytes per English token


def test_images_and_tools_add_their_allowances() -> None:
    text_only = Message.user("describe")
    with_image = Message.user([TextPart("describe"), ImagePart("https://example.com/a.png")])
    assert message_tokens_upper(with_image) - message_tokens_upper(text_only) == IMAGE_TOKENS
    tool = ToolSpec(name="lookup", description="find a runbook",
                    parameters={"type": "object", "properties": {"q": {"type": "string"}}})
    assert estimate_input_tokens([text_only], [tool]) > estimate_input_tokens([text_only]) + len("lookup")


def test_empty_text_counts_nothing() -> None:
    assert text_tokens_upper("") == 0
