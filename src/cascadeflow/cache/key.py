"""Cache keys: a SHA-256 of canonical JSON over everything that can change an answer.

The exact key covers the route (each tier's model id, endpoint, output limit and provider options, and
for a cascade the acceptance settings), every message with its role, name, tool calls and parts, the tools,
tool choice, sampling settings, output limit, stop sequences, response format, logprobs, seed and any other
provider option, plus the configured scope (user, agent, tenant). The semantic scope is the same hash with
the text of the last user message replaced by its literals (`salient_literals`: numbers, identifiers,
negation, comparison direction, time units), which sentence embeddings barely tell apart but which change
the answer: two requests share a scope when only the wording of that message differs.
Canonical JSON (sorted keys, no whitespace, no NaN) makes the key independent of dict order; a value JSON
cannot express makes the request uncacheable instead of falling back to a Python repr.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cascadeflow.messages import Message, Request
from cascadeflow.models import ModelConfig

KEY_VERSION = 1  # bump when the canonical form changes, so old entries stop matching


class Uncacheable(ValueError):
    """The request holds a value canonical JSON cannot express (the call then bypasses the cache)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheKeys:
    """The exact key of a request, its semantic scope and the text the semantic index embeds."""

    exact: str
    semantic_scope: str
    last_user_text: str | None  # None: no user message to compare (the semantic index is not consulted)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_IDENTIFIER = re.compile(r"\b(?=[\w.:/-]*\d)[A-Za-z0-9]+(?:[-_./:][A-Za-z0-9]+)*\b"  # db-1, p99, v2.3
                         r"|\b[A-Za-z0-9]+(?:[-_./:][A-Za-z0-9]+)+\b")  # user-profile, a.b/c
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|nobody|without|neither|nor|cannot)\b|n't\b", re.IGNORECASE)
_UP = re.compile(r"\b(?:above|over|more|exceed\w*|greater|higher|at least)\b", re.IGNORECASE)
_DOWN = re.compile(r"\b(?:below|under|less|fewer|lower|at most)\b", re.IGNORECASE)
_TIME_UNIT = re.compile(r"\b(second|minute|hour|day|week|month|year)s?\b", re.IGNORECASE)


def salient_literals(text: str) -> list[str]:
    """What in `text` changes the answer while barely moving its embedding: numbers, identifiers (hosts,
    versions, hyphenated names), negation, the direction of a comparison and time units. Two wordings are
    only compared by meaning when these agree."""
    literals = set(_NUMBER.findall(text)) | {m.lower() for m in _IDENTIFIER.findall(text)}
    literals |= {f"unit:{m.lower()}" for m in _TIME_UNIT.findall(text)}
    if _NEGATION.search(text):
        literals.add("negated")
    if _UP.search(text):
        literals.add("direction:up")
    if _DOWN.search(text):
        literals.add("direction:down")
    return sorted(literals)


def _refuse(value: Any) -> Any:
    """JSON for the few non-JSON types with one obvious text (paths, enums, sets); anything else refused."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Enum):
        return value.value
    raise Uncacheable(f"a {type(value).__name__} value cannot be part of a cache key")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, NaN refused: equal data gives equal text."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_refuse)
    except (TypeError, ValueError) as exc:
        raise Uncacheable(str(exc)) from exc


def route_facts(tiers: Sequence[ModelConfig], quality: Any = None) -> dict[str, Any]:
    """What about the route can change the answer: the tiers' endpoints and options, the acceptance bar."""
    facts: dict[str, Any] = {"tiers": [
        {"model": m.id, "base_url": m.base_url, "max_output_tokens": m.max_output_tokens, "extra": dict(m.extra)}
        for m in tiers
    ]}
    if len(tiers) > 1 and quality is not None:
        facts["quality"] = _quality_facts(quality)
    return facts


def _quality_facts(quality: Any) -> dict[str, Any]:
    validators = [f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', type(v).__qualname__)}"
                  for v in getattr(quality, "validators", ())]
    calibration = getattr(quality, "calibration", None)
    return {
        "threshold": getattr(quality, "threshold", None),
        "thresholds_by_complexity": dict(getattr(quality, "thresholds_by_complexity", None) or {}),
        "min_length": getattr(quality, "min_length", None),
        "required_format": getattr(quality, "required_format", None),
        "json_schema": getattr(quality, "json_schema", None),
        "signals": list(getattr(quality, "signals", ())),
        "validators": validators,
        "calibrated": calibration is not None,
    }


def _message_facts(message: Message, *, drop_text: bool = False) -> dict[str, Any]:
    facts = message.to_dict()
    if drop_text:
        content = facts.get("content")
        if isinstance(content, list):  # keep the non-text parts (images): they still have to match
            facts["content"] = [p for p in content if p.get("type") != "text"]
        else:
            facts["content"] = None
    return facts


def request_facts(request: Request) -> dict[str, Any]:
    """Every request field that reaches the provider, apart from the messages."""
    return {
        "max_tokens": request.max_tokens,
        "temperature": None if request.temperature is None else float(request.temperature),
        "top_p": None if request.top_p is None else float(request.top_p),
        "stop": list(request.stop),
        "tools": [{"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
                  for t in request.tools],
        "tool_choice": request.tool_choice,
        "logprobs": request.logprobs,
        "top_logprobs": request.top_logprobs,
        "response_format": request.response_format,
        "extra": dict(request.extra),  # seed and provider-specific options
    }


def _last_user_index(messages: Sequence[Message]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return None


def cache_keys(request: Request, route: Mapping[str, Any], scope: Mapping[str, Any]) -> CacheKeys:
    """The keys of `request` sent along `route` (see `route_facts`) for `scope` (e.g. {"user": "alice"})."""
    shared = {"v": KEY_VERSION, "route": route, "request": request_facts(request), "scope": dict(scope)}
    messages = request.messages
    exact = canonical_json({**shared, "messages": [_message_facts(m) for m in messages]})
    last = _last_user_index(messages)
    text = messages[last].text if last is not None else None
    scoped = [_message_facts(m, drop_text=i == last) for i, m in enumerate(messages)]
    semantic = canonical_json({**shared, "messages": scoped, "literals": salient_literals(text or "")})
    return CacheKeys(exact=_digest(exact), semantic_scope=_digest(semantic), last_user_text=text or None)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
