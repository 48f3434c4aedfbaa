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

from cascadeflow.messages import ImagePart, Message, Request, Response, ToolCall, ToolSpec, Usage

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


def estimated_usage(request: Request, text: str, tool_calls: Iterable[ToolCall] = ()) -> Usage:
    """Upper-bound usage of an answer whose host reported none (or none that can be right), so budgets
    settle conservatively."""
    produced = text + "".join(c.name + c.arguments for c in tool_calls)
    return Usage(input_tokens=estimate_input_tokens(request.messages, request.tools),
                 output_tokens=text_tokens_upper(produced), estimated=True)


def checked_usage(request: Request, response: Response, max_tokens: int) -> tuple[Usage, str | None]:
    """(usage to price, a note for the record) for an answer's reported usage.

    A negative count cannot be right and could make a cost negative: the report is treated as missing and the
    usage estimated. More output than `max_tokens` can be right (a host that ignores the cap still bills it):
    it is priced as reported and the note flags it."""
    usage = response.usage
    counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
              usage.reasoning_tokens)
    if any(count < 0 for count in counts):
        estimate = estimated_usage(request, response.content, response.tool_calls)
        return estimate, f"negative token counts reported {counts}: usage estimated"
    if max_tokens > 0 and usage.output_tokens > max_tokens and not usage.estimated:
        return usage, f"{usage.output_tokens} output tokens reported above max_tokens={max_tokens}"
    return usage, None
