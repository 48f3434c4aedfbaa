"""`CachedAnswer`: what the cache stores for one answered request, and its JSON bytes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cascadeflow.messages import Response, ToolCall, Usage


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """The final answer of a call (for a cascade: the accepted tier's), what it cost and who produced it."""

    content: str
    model: str  # 'provider/model' that produced the answer
    provider: str
    usage: Usage
    cost: Decimal  # what the original call cost over all its attempts: what a hit saves
    tier: int = 0
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    created_at: float = field(default_factory=time.time)

    @classmethod
    def from_response(cls, response: Response, *, model: str, cost: Decimal, tier: int) -> CachedAnswer:
        return cls(content=response.content, model=model, provider=response.provider, usage=response.usage,
                   cost=cost, tier=tier, finish_reason=response.finish_reason, tool_calls=response.tool_calls)

    def response(self) -> Response:
        """The answer as a `Response` (model is the bare model id, as providers report it)."""
        return Response(content=self.content, model=self.model.split("/", 1)[-1], provider=self.provider,
                        usage=self.usage, tool_calls=self.tool_calls, finish_reason=self.finish_reason)  # type: ignore[arg-type]

    def to_bytes(self) -> bytes:
        u = self.usage
        return json.dumps({
            "content": self.content, "model": self.model, "provider": self.provider, "cost": str(self.cost),
            "tier": self.tier, "finish_reason": self.finish_reason, "created_at": self.created_at,
            "usage": [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
                      u.reasoning_tokens, u.estimated],
            "tool_calls": [[c.id, c.name, c.arguments] for c in self.tool_calls],
        }, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedAnswer:
        raw: dict[str, Any] = json.loads(data)
        i, o, cr, cw, r, est = raw["usage"]
        return cls(content=raw["content"], model=raw["model"], provider=raw["provider"],
                   usage=Usage(input_tokens=i, output_tokens=o, cache_read_tokens=cr, cache_write_tokens=cw,
                               reasoning_tokens=r, estimated=est),
                   cost=Decimal(raw["cost"]), tier=raw["tier"], finish_reason=raw["finish_reason"],
                   tool_calls=tuple(ToolCall(id=a, name=b, arguments=c) for a, b, c in raw["tool_calls"]),
                   created_at=raw["created_at"])
