"""The OpenTelemetry audit sink: one root span per call and one `chat {model}` child span per attempt,
with the GenAI semantic-convention attributes and cascadeflow's routing, budget and cost under `cascadeflow.*`.

Spans are emitted when the call finishes (the sink sees whole records), so their times are reconstructed:
the root ends at the record's timestamp and lasts `latency_ms`; attempts are laid end to end from its start.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.models import PROVIDERS
from cascadeflow.trace.records import AuditRecord
from cascadeflow.trace.redact import redacted_dict

IN_PROCESS_WIRES = frozenset({"local", "replay"})  # no network hop: spans are INTERNAL, not CLIENT
ROOT_SPAN_NAME = "cascadeflow.call"


def _otel() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigurationError(
            'OtelSink needs OpenTelemetry: pip install "cascadeflow[otel]"') from None
    return trace


def split_model_id(model_id: str) -> tuple[str, str]:
    """`groq/llama3-70b-8192` -> (`groq`, `llama3-70b-8192`); a bare id has an unknown provider."""
    provider, sep, bare = model_id.partition("/")
    return (provider, bare) if sep else ("unknown", model_id)


def _ns(moment: str, fallback: int) -> int:
    try:
        return int(datetime.fromisoformat(moment).timestamp() * 1_000_000_000)
    except (TypeError, ValueError):
        return fallback


def _scalar(value: Any) -> Any:
    """OTel attributes take str/bool/int/float (or lists of one type); anything else becomes JSON."""
    if isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _messages(content: Any, role: str) -> str:
    if isinstance(content, str):
        content = [{"role": role, "parts": [{"type": "text", "content": content}]}]
    return json.dumps(content, default=str, ensure_ascii=False)


class OtelSink:
    """Emit audit records as OpenTelemetry spans on `tracer_provider` (default: the global provider).

    Prompts and answers become `gen_ai.input.messages` / `gen_ai.output.messages` only with
    record_content=True and only when the record carries them.
    """

    def __init__(self, tracer_provider: Any = None, *, record_content: bool = False):
        trace = _otel()
        self._trace = trace
        self.tracer = trace.get_tracer("cascadeflow", tracer_provider=tracer_provider)
        self.record_content = record_content

    def __repr__(self) -> str:
        return "OtelSink()"

    def write(self, record: AuditRecord) -> None:
        data = redacted_dict(record, record_content=self.record_content)
        end = _ns(record.timestamp, fallback=time.time_ns())
        start = end - int(record.latency_ms * 1_000_000)
        root = self.tracer.start_span(ROOT_SPAN_NAME, kind=self._trace.SpanKind.INTERNAL, start_time=start,
                                      attributes=self._root_attributes(data))
        context = self._trace.set_span_in_context(root)
        cursor = start
        tiers = data.get("tiers") or []
        for index, tier in enumerate(tiers):
            duration = int(float(tier.get("latency_ms") or 0.0) * 1_000_000)
            last = index == len(tiers) - 1
            self._attempt_span(tier, data if last else {}, context, cursor, min(cursor + duration, end))
            cursor = min(cursor + duration, end)
        if record.error:
            root.set_status(self._trace.Status(self._trace.StatusCode.ERROR, data.get("error")))
        root.end(end_time=end)

    def _root_attributes(self, data: dict[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "cascadeflow.request_id": data["request_id"],
            "cascadeflow.action": data["action"],
            "cascadeflow.mode": data["mode"],
            "cascadeflow.routing_reason": data["routing_reason"],
            "cascadeflow.cost_usd": float(data["cost_usd"]),
            "cascadeflow.latency_ms": float(data["latency_ms"]),
            "cascadeflow.price_version": data["price_version"],
            "cascadeflow.attempts": len(data.get("tiers") or []),
            # totals under our namespace: gen_ai.usage.* sits on the attempt spans only, so backends that
            # sum token usage over spans do not count a call twice
            "cascadeflow.input_tokens": int(data["input_tokens"]),
            "cascadeflow.output_tokens": int(data["output_tokens"]),
        }
        optional = {"run_id": "cascadeflow.run_id", "user_id": "cascadeflow.user_id",
                    "agent_id": "cascadeflow.agent_id", "model_requested": "cascadeflow.model_requested",
                    "model_selected": "cascadeflow.model_selected",
                    "budget_remaining": "cascadeflow.budget_remaining_usd", "error": "cascadeflow.error"}
        for field_name, attr in optional.items():
            if data.get(field_name) is not None:
                attrs[attr] = data[field_name]
        for key, value in (data.get("metadata") or {}).items():
            if value is not None:
                attrs[f"cascadeflow.metadata.{key}"] = _scalar(value)
        return attrs

    def _attempt_span(self, tier: dict[str, Any], content: dict[str, Any], context: Any, start: int,
                      end: int) -> None:
        provider, bare = split_model_id(str(tier.get("model") or ""))
        facts = PROVIDERS.get(provider)
        in_process = facts is not None and facts.wire in IN_PROCESS_WIRES
        kind = self._trace.SpanKind.INTERNAL if in_process else self._trace.SpanKind.CLIENT
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": bare,
            "gen_ai.response.model": bare,
            "gen_ai.usage.input_tokens": int(tier.get("input_tokens") or 0),
            "gen_ai.usage.output_tokens": int(tier.get("output_tokens") or 0),
            "cascadeflow.tier": int(tier.get("tier") or 0),
            "cascadeflow.role": str(tier.get("role") or ""),
            "cascadeflow.status": str(tier.get("status") or ""),
            "cascadeflow.cost_usd": float(tier.get("cost_usd") or 0.0),
        }
        if tier.get("max_tokens"):
            attrs["gen_ai.request.max_tokens"] = int(tier["max_tokens"])
        if tier.get("finish_reason"):
            attrs["gen_ai.response.finish_reasons"] = [str(tier["finish_reason"])]
        if tier.get("shrunk_from") is not None:
            attrs["cascadeflow.max_tokens_shrunk_from"] = int(tier["shrunk_from"])
        if content.get("prompt") is not None:
            attrs["gen_ai.input.messages"] = _messages(content["prompt"], "user")
        if content.get("answer") is not None:
            attrs["gen_ai.output.messages"] = _messages(content["answer"], "assistant")
        span = self.tracer.start_span(f"chat {bare}", context=context, kind=kind, start_time=start,
                                      attributes=attrs)
        if tier.get("status") not in (None, "ok"):
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(tier.get("error") or "")))
            if tier.get("error"):
                span.set_attribute("error.type", str(tier["error"]).split(":", 1)[0])
        span.end(end_time=end)
