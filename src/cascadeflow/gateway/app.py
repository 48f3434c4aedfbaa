"""`create_app(config)`: the gateway as an ASGI app (Starlette) for `cascadeflow serve` or any ASGI server.

The hot path of every route is parse -> `Gateway.admit` -> one `CascadeFlow` call -> serialise. OpenAI:
POST /v1/chat/completions, POST /v1/responses, GET /v1/models; Anthropic: POST /v1/messages; and
GET /health, /ready, /metrics.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from cascadeflow.errors import ConfigurationError

try:
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route
except ImportError:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError('the gateway needs its extra: pip install "cascadeflow[gateway]"') from None

from cascadeflow.errors import InvalidRequestError, KeyRejected
from cascadeflow.flow.client import CompletionResult
from cascadeflow.gateway import wire_chat, wire_messages, wire_responses
from cascadeflow.gateway.calls import ClientCall
from cascadeflow.gateway.config import LOOPBACK_HOSTS, GatewayConfig, gateway_config
from cascadeflow.gateway.errors import Wire, failure
from cascadeflow.gateway.service import Admitted, Gateway
from cascadeflow.messages import Response as Answer
from cascadeflow.messages import StreamDone
from cascadeflow.runtime.streaming import drain
from cascadeflow.stamps import new_request_id

log = logging.getLogger(__name__)

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(wire: Wire, exc: BaseException) -> Response:
    found = failure(exc)
    if found.status >= 500:
        log.warning("gateway call failed: %s: %s", type(exc).__name__, found.message)
    return OrjsonResponse(found.body(wire), found.status, headers=found.headers())


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("the request body is not valid JSON") from None


def _answer_headers(result: CompletionResult, served: str) -> dict[str, str]:
    return {"x-cascadeflow-request-id": result.request_id, "x-cascadeflow-model": result.model,
            "x-cascadeflow-served-as": served, "x-cascadeflow-reason": _header_text(result.routing_reason),
            "x-cascadeflow-cost-usd": f"{result.cost:.8f}",
            "x-cascadeflow-cache": "hit" if result.cache_hit else "miss"}


def _header_text(text: str) -> str:
    return text.encode("ascii", "replace").decode()[:200].replace("\n", " ")


def _as_answer(result: CompletionResult) -> Answer:
    provider, _, name = result.model.partition("/")
    return result.response or Answer(content=result.content, model=name, provider=provider, usage=result.usage,
                                     tool_calls=result.tool_calls,
                                     finish_reason=result.finish_reason)  # type: ignore[arg-type]


class _Routes:
    """The endpoints, bound to one Gateway."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.open = gateway.keys is None  # no key store: loopback clients only, any key accepted

    def _check_client(self, request: Request) -> None:
        if self.open and request.client is not None and request.client.host not in LOOPBACK_HOSTS:
            raise KeyRejected("this gateway has no key store and serves loopback clients only", status=403)

    async def _call(self, request: Request, wire: Wire, api: str, parse: Callable[[Any], ClientCall],
                    encode: Callable[..., Any], streamer: Callable[..., Any]) -> Response:
        try:
            self._check_client(request)
            call = parse(await _body(request))
            admitted = self.gateway.admit(call, _token(request), api)
            if call.stream:
                return await self._stream(admitted, call, wire, streamer)
            result = await self.gateway.complete(admitted)
        except Exception as exc:  # noqa: BLE001 - every failure is answered in the wire's error shape
            return error_response(wire, exc)
        body = encode(_as_answer(result), request_id=result.request_id, model=result.model)
        return OrjsonResponse(body, headers=_answer_headers(result, admitted.served.name))

    async def _stream(self, admitted: Admitted, call: ClientCall, wire: Wire, streamer: Callable[..., Any]) -> Response:
        # a stream's headers leave before its call has a record: the id its chunks carry is put in the
        # record's metadata (stream_id) so the two can be matched
        stream_id = new_request_id()
        admitted.kwargs["metadata"]["stream_id"] = stream_id
        events = self.gateway.stream(admitted)
        first = await events.__anext__()  # errors before anything is sent are answered with their status
        served = admitted.served
        model = served.tiers[0].id if len(served.tiers) == 1 else served.name
        encoder = streamer(request_id=stream_id, model=model, call=call)

        async def body() -> AsyncIterator[bytes]:
            try:
                event = first
                while True:
                    if isinstance(event, StreamDone):
                        yield encoder.done(event.response)
                        return
                    yield encoder.event(event)
                    event = await events.__anext__()
            except Exception as exc:  # noqa: BLE001 - mid-stream: the wire's in-stream error
                yield encoder.error(failure(exc).body(wire))
            finally:
                await events.aclose()  # a client gone mid-stream: upstream cancelled, charged what was generated

        headers = {**SSE_HEADERS, "x-cascadeflow-served-as": served.name, "x-cascadeflow-route": model,
                   "x-cascadeflow-stream-id": stream_id}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def chat(self, request: Request) -> Response:
        return await self._call(request, "openai", "chat.completions", wire_chat.parse, wire_chat.completion,
                                lambda request_id, model, call: wire_chat.ChatStream(
                                    request_id=request_id, model=model, include_usage=call.include_usage))

    async def responses(self, request: Request) -> Response:
        return await self._call(request, "openai", "responses", wire_responses.parse, wire_responses.response_object,
                                lambda request_id, model, call: wire_responses.ResponsesStream(
                                    request_id=request_id, model=model))

    async def messages(self, request: Request) -> Response:
        return await self._call(request, "anthropic", "messages", wire_messages.parse, wire_messages.message,
                                lambda request_id, model, call: wire_messages.MessagesStream(
                                    request_id=request_id, model=model))

    async def models(self, request: Request) -> Response:
        try:
            self._check_client(request)
            if self.gateway.keys is not None:
                self.gateway.keys.authenticate(_token(request))
        except Exception as exc:  # noqa: BLE001
            return error_response("openai", exc)
        return OrjsonResponse({"object": "list", "data": self.gateway.catalog.listing()})

    async def health(self, request: Request) -> Response:
        return OrjsonResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        checks = self.gateway.ready()
        ok = all(v == "ok" for v in checks.values())
        return OrjsonResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    async def metrics(self, request: Request) -> Response:
        if self.gateway.metrics is None:
            return OrjsonResponse({"error": "metrics are off in this gateway's configuration"}, 404)
        return Response(self.gateway.metrics.scrape(), media_type="text/plain; version=0.0.4")


def create_app(config: GatewayConfig | dict[str, Any] | None = None) -> Starlette:
    """The gateway's ASGI app. Without a key store it answers loopback clients only and accepts any key."""
    config = gateway_config(config)
    gateway = Gateway(config)
    routes = _Routes(gateway)
    if routes.open:
        log.warning("cascadeflow gateway: no key store configured: serving loopback clients only and accepting "
                    "any client key")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        left = await drain(config.shutdown_grace_seconds)  # streamed calls finish or settle before exit
        if left:
            log.error("%d streamed calls were still running after %.0f s of shutdown", left,
                      config.shutdown_grace_seconds)

    app = Starlette(routes=[
        Route("/v1/chat/completions", routes.chat, methods=["POST"]),
        Route("/v1/responses", routes.responses, methods=["POST"]),
        Route("/v1/messages", routes.messages, methods=["POST"]),
        Route("/v1/models", routes.models, methods=["GET"]),
        Route("/health", routes.health, methods=["GET"]),
        Route("/ready", routes.ready, methods=["GET"]),
        Route("/metrics", routes.metrics, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.gateway = gateway
    return app
