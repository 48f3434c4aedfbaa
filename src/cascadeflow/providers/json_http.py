"""`JsonHttpAdapter`: what the HTTP adapters share — endpoint and key resolution, the pooled caller with its
retries and breaker, the sync wrapper, JSON stream events, and errors with the key scrubbed out.

A subclass names its wire module (body builders, error mapping), says how its URL and auth header are built,
and parses responses and stream events in its API's shapes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any, ClassVar, Self

from cascadeflow.errors import MalformedResponseError, ProviderError
from cascadeflow.messages import Request, Response
from cascadeflow.models import ModelConfig, Secret
from cascadeflow.providers.admission import priority_of
from cascadeflow.providers.endpoint import redact, resolve_endpoint
from cascadeflow.providers.http import CallReport, HttpCaller, HttpOptions, Timeouts
from cascadeflow.sync import run_sync
from cascadeflow.tokens import estimate_input_tokens


def rate_tokens(request: Request) -> int:
    """The tokens a request counts against a tokens-per-minute limit: its input bound plus max_tokens."""
    return estimate_input_tokens(request.messages, request.tools) + (request.max_tokens or 0)


class JsonHttpAdapter:
    """Base of the JSON-over-HTTP provider adapters (see the module docstring)."""

    default_provider: ClassVar[str]
    wire: ModuleType  # a class attribute in each subclass; has map_error(status, parsed, raw, headers, request_id, *, provider, model)
    request_id_header: ClassVar[str] = "x-request-id"
    api_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, provider: str | None = None, *, base_url: str | None = None,
                 api_key: Secret | str | None = None, http: HttpOptions | None = None,
                 headers: Mapping[str, str] | None = None):
        provider = provider or self.default_provider
        endpoint = resolve_endpoint(provider, base_url=base_url, api_key=api_key)
        self.name = provider
        self.base_url = endpoint.base_url
        self._key = endpoint.api_key
        self._url = self._endpoint_url(self.base_url)
        self._headers = {"content-type": "application/json", "accept": "application/json", **self.api_headers,
                         **(headers or {})}
        # Auth headers are built per request from the Secret, so no long-lived object holds the plain key.
        auth = (lambda key=self._key: self._auth_headers(key.get())) if self._key is not None else None
        self._http = HttpCaller(provider=provider, options=http or HttpOptions(), map_error=self._map_error,
                                request_id_header=self.request_id_header, auth=auth)

    @classmethod
    def from_config(cls, cfg: ModelConfig, http: HttpOptions | None = None) -> Self:
        if http is None and cfg.timeout is not None:
            http = HttpOptions(timeouts=Timeouts(total=cfg.timeout))
        return cls(cfg.provider or cls.default_provider, base_url=cfg.base_url, api_key=cfg.api_key, http=http,
                   headers=cfg.extra.get("headers"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.name!r}, base_url={self.base_url!r})"

    # --- what a subclass provides ---------------------------------------------------------------------------

    def _endpoint_url(self, base_url: str) -> str:
        raise NotImplementedError

    def _auth_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError

    def _body(self, request: Request, *, stream: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def _parse(self, data: Any, request: Request, headers: Mapping[str, str], latency_ms: float) -> Response:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------------------

    async def complete(self, request: Request) -> Response:
        report = CallReport()
        response = await self._http.post_json(
            self._url, self._body(request), self._headers, model=request.model, timeout=request.timeout,
            priority=priority_of(request.metadata), tokens=lambda: rate_tokens(request), report=report,
            # latency: the answered attempt's own time on the wire, without queueing or earlier attempts
            parse=lambda data, headers: self._parse(data, request, headers, report.elapsed_ms()))
        return replace(response, queued_ms=report.queued_s * 1000, http_attempts=tuple(report.attempts))

    def complete_sync(self, request: Request) -> Response:
        return run_sync(self.complete(request), what=f"{type(self).__name__}.complete_sync")

    def _request_id(self, data: Any, headers: Mapping[str, str]) -> str | None:
        """The provider's request id: its header, else the response body's `id`."""
        return self._http.request_id(headers) or (data.get("id") if isinstance(data, Mapping) else None)

    def _stream_deadline(self, request: Request) -> float:
        return time.monotonic() + (request.timeout or self._http.options.timeouts.total)

    def _admission(self, request: Request) -> dict[str, Any]:
        """The admission arguments of a stream: its priority and its tokens for a tokens-per-minute limit."""
        return {"priority": priority_of(request.metadata), "tokens": lambda: rate_tokens(request)}

    def _json_object(self, data: str, request: Request, what: str) -> Mapping[str, Any]:
        """One stream event's data as a JSON object, or MalformedResponseError naming `what` it was."""
        try:
            parsed = json.loads(data)
        except ValueError:
            raise MalformedResponseError(f"a stream {what} is not JSON: {data[:120]!r}", provider=self.name,
                                         model=request.model) from None
        if not isinstance(parsed, Mapping):
            raise MalformedResponseError(f"a stream {what} is not a JSON object", provider=self.name,
                                         model=request.model)
        return parsed

    def _scrubbed(self, data: str) -> Any:
        """A provider's JSON error text, parsed after the key is scrubbed out of it."""
        return json.loads(redact(data, self._key))

    def _map_error(self, status: int, parsed: Any, raw: str, headers: Mapping[str, str], request_id: str | None,
                   model: str) -> ProviderError:
        # Servers echo parts of what they received (a mistyped key, a prompt): scrub the key first.
        raw = redact(raw, self._key)
        if parsed is not None:
            parsed = self._scrubbed(json.dumps(parsed))
        return self.wire.map_error(status, parsed, raw, headers, request_id, provider=self.name, model=model)
