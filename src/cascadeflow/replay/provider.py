"""`ReplayProvider`: answers a request with a model's recorded answer from a replay dataset, without network.

The query is named by `request.metadata["replay_id"]`; the model by `request.model` (the bare model id the
pipeline sets from the ModelConfig). Usage, logprobs, confidence, finish reason and latency come from the
record; unrecorded token counts are estimated by the dataset's documented ratio (Usage.estimated=True).
A recorded answer longer than `request.max_tokens` is cut there with finish_reason="length", as a real model
would stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from cascadeflow.errors import BadRequestError, ConfigurationError
from cascadeflow.messages import Request, Response, StreamDone, StreamEvent, TextDelta, Usage
from cascadeflow.models import ModelConfig
from cascadeflow.replay.format import (
    RecordedAnswer,
    RecordedQuery,
    ReplayDataset,
    estimate_message_tokens,
    estimate_tokens,
)

REPLAY_ID = "replay_id"


class ReplayProvider:
    """Serves every model of one dataset from its recorded answers; records how many calls it served."""

    name = "replay"

    def __init__(self, dataset: ReplayDataset):
        self.dataset = dataset
        self._queries: dict[str, RecordedQuery] = {q.id: q for q in dataset.queries}
        self._alias_by_name: dict[str, str] = {}
        for alias, cfg in dataset.models.items():
            self._alias_by_name.setdefault(cfg.name, alias)
            self._alias_by_name.setdefault(cfg.id, alias)
        self.calls: dict[str, int] = {alias: 0 for alias in dataset.models}

    def resolver(self) -> Callable[[ModelConfig], ReplayProvider]:
        """A `resolve_provider` for Runtime: every model of the dataset is served by this provider, while its
        ModelConfig keeps its real provider and name (so the price book prices it as the real model)."""
        def resolve(cfg: ModelConfig) -> ReplayProvider:
            if cfg.id not in self._alias_by_name and cfg.name not in self._alias_by_name:
                raise ConfigurationError(f"model {cfg.id!r} is not in replay dataset {self.dataset.name!r}; "
                                         f"its models are: {', '.join(self.dataset.models)}")
            return self
        return resolve

    def _recorded(self, request: Request) -> tuple[str, RecordedQuery, RecordedAnswer]:
        qid = request.metadata.get(REPLAY_ID)
        if qid is None:
            raise ConfigurationError(f"a replayed request needs metadata[{REPLAY_ID!r}] naming the query")
        query = self._queries.get(str(qid))
        if query is None:
            raise BadRequestError(f"query {qid!r} is not in the dataset", provider=self.name, model=request.model)
        alias = self._alias_by_name.get(request.model)
        if alias is None:
            raise BadRequestError(f"model {request.model!r} has no recorded answers; the dataset's models are "
                                  f"{', '.join(self.dataset.models)}", provider=self.name, model=request.model)
        return alias, query, query.answers[alias]

    async def complete(self, request: Request) -> Response:
        alias, query, answer = self._recorded(request)
        self.calls[alias] += 1
        estimated = answer.input_tokens is None or answer.output_tokens is None
        output_tokens = answer.output_tokens if answer.output_tokens is not None else estimate_tokens(answer.content)
        content, finish = answer.content, answer.finish_reason
        logprobs = answer.logprobs
        if request.max_tokens is not None and output_tokens > request.max_tokens:
            # A real model stops at max_tokens: cut the recorded answer at the same share of its length.
            keep = request.max_tokens / output_tokens
            content, finish, output_tokens = content[: int(len(content) * keep)], "length", request.max_tokens
            logprobs = logprobs[: int(len(logprobs) * keep)] if logprobs is not None else None
        usage = Usage(
            input_tokens=answer.input_tokens if answer.input_tokens is not None
            else estimate_message_tokens(query.messages),
            output_tokens=output_tokens, estimated=estimated,
        )
        return Response(
            content=content, model=request.model, provider=self.name, usage=usage,
            finish_reason=finish if finish in _FINISH else "unknown",  # type: ignore[arg-type]
            raw_finish_reason=finish, logprobs=logprobs,
            latency_ms=answer.latency_ms or 0.0, request_id=f"replay-{query.id}-{alias}",
            confidence=answer.confidence,
        )

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        if response.content:
            yield TextDelta(response.content)
        yield StreamDone(response)


_FINISH = frozenset({"stop", "length", "tool_calls", "content_filter", "error", "unknown"})
