"""Upper-bound input-token estimates for pre-flight cost checks, with no network and no tokenizer files.

Why the bound holds: byte-level BPE tokenizers (GPT-4o's o200k, cl100k, Llama 3, SmolLM2, Qwen) and
SentencePiece with byte fallback emit at least one UTF-8 byte per content token, so a text of B bytes is at
most B tokens (+1 for a SentencePiece word-start marker). Chat templates add special tokens per message;
we allow MESSAGE_OVERHEAD for those, REQUEST_OVERHEAD for the reply primer, TEMPLATE_PREAMBLE for text some
templates inject on their own (SmolLM2 and Qwen2.5 add a default system turn, Llama 3.1 a date header), and
a fixed allowance per image.
The bound is loose (real text averages ~4 bytes per token) on purpose: a reservation that is too large is
released at settlement, one that is too small could overshoot a budget. Tests check it against real
tokenizers that are available offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from cascadeflow.messages import ImagePart, Message, ToolSpec

MESSAGE_OVERHEAD = 8  # role markers and separators of a chat template
REQUEST_OVERHEAD = 16  # assistant primer, BOS/EOS
IMAGE_TOKENS = 2_000  # above the documented per-image maximum of the major vision APIs at default detail
TOOL_OVERHEAD = 16  # tool-definition wrapper tokens per tool
TEMPLATE_PREAMBLE = 32  # default system text a chat template inserts (SmolLM2's measured 17 tokens)


def text_tokens_upper(text: str) -> int:
    return len(text.encode("utf-8")) + 1 if text else 0


def message_tokens_upper(message: Message) -> int:
    total = MESSAGE_OVERHEAD
    content = message.content
    if isinstance(content, str):
        total += text_tokens_upper(content)
    elif content:
        for part in content:
            total += IMAGE_TOKENS if isinstance(part, ImagePart) else text_tokens_upper(part.text)
    for call in message.tool_calls:
        total += text_tokens_upper(call.name) + text_tokens_upper(call.arguments) + MESSAGE_OVERHEAD
    if message.name:
        total += text_tokens_upper(message.name)
    return total


def estimate_input_tokens(messages: Iterable[Message], tools: Iterable[ToolSpec] = ()) -> int:
    """An upper bound on the input tokens any supported tokenizer will count for this request."""
    total = REQUEST_OVERHEAD + TEMPLATE_PREAMBLE
    for message in messages:
        total += message_tokens_upper(message)
    for tool in tools:
        total += TOOL_OVERHEAD + text_tokens_upper(tool.name) + text_tokens_upper(tool.description)
        total += text_tokens_upper(json.dumps(tool.parameters, separators=(",", ":")))
    return total
