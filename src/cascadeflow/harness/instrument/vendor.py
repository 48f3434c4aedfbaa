"""Which vendor an instrumented SDK client talks to, from the base URL it was built with.

The `openai` SDK is the client of many OpenAI-compatible hosts (Groq, Together, DeepSeek, a local vLLM...),
so the SDK alone does not say whose model is called, at whose price, under which compliance rules. The
client's base URL does: it is matched against the base URL configured for each provider (its `*_BASE_URL`
environment variable, e.g. GROQ_BASE_URL) and then each provider's public host (`models.PROVIDERS`),
among the providers that speak the SDK's wire format. A host that matches none is `Vendor.known = False`:
its calls are recorded under the unknown-price policy (recorded unpriced in observe mode, refused in
enforce mode) with the host named in the audit record.

Which client a resource belongs to is learnt when the resource is made: `init()` patches the instrumented
resource classes' constructors, whose one public argument is the client (`Completions(client)`), and
`note_client` remembers the pair. A resource made before that (before `init()`, or while the SDK was
un-patched) cannot be traced through public API, so its vendor is unknown (host `UNTRACED`) and the same
policy applies.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cascadeflow.known_secrets import remember_secret
from cascadeflow.models import PROVIDERS

log = logging.getLogger(__name__)

_WIRE_OF_SDK = {"openai": "openai_chat", "anthropic": "anthropic"}


UNTRACED = "untraced"  # the host of a resource no client holds: which client, and so which host, is unknown


@dataclass(frozen=True, slots=True)
class Vendor:
    """The provider an SDK client's calls go to; `known=False`: a host no provider is configured for, or
    (host `UNTRACED`) a resource whose client cannot be told."""

    provider: str
    host: str
    known: bool = True

    def why_unknown(self) -> str:
        """Why the calls cannot be priced, and what to do about it (for the unknown-price policy's error)."""
        if self.host == UNTRACED:
            return ("the SDK resource was made before cascadeflow.init() patched the SDK and no live client "
                    "holds it (e.g. a resource built on its own), so the host it sends to cannot be told; make "
                    "the client, or first use the resource, after cascadeflow.init()")
        return (f"the client's host {self.host!r} is no known provider's; set the provider's base URL variable "
                f"(e.g. GROQ_BASE_URL) to it")


def normalise(url: str) -> str:
    """scheme://host[:port]/path in lower case, without a trailing slash or a trailing /v1 (the SDKs and our
    provider settings disagree on whether the API version belongs to the base URL)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path.rstrip('/')}"


def _host(url: str) -> str:
    return urlsplit(url.strip()).netloc.lower()


def _candidates(sdk_provider: str) -> list[str]:
    """Providers speaking the SDK's wire format, the SDK's own vendor first (it wins a tie)."""
    wire = _WIRE_OF_SDK.get(sdk_provider, PROVIDERS[sdk_provider].wire)
    names = [name for name, facts in PROVIDERS.items() if facts.wire == wire]
    return sorted(names, key=lambda name: name != sdk_provider)


def vendor_for(sdk_provider: str, base_url: str | None) -> Vendor:
    """The vendor of a client of the `sdk_provider` SDK built with `base_url` (None: the SDK's default), as
    the environment configures the providers' base URLs now."""
    if not base_url:
        return Vendor(sdk_provider, _host(PROVIDERS[sdk_provider].base_url or ""))
    wanted, host = normalise(base_url), _host(base_url)
    names = _candidates(sdk_provider)
    for name in names:  # a base URL configured for a provider is the most specific statement
        env = PROVIDERS[name].base_url_env
        configured = os.environ.get(env, "").strip() if env else ""
        if configured and normalise(configured) == wanted:
            return Vendor(name, host)
    for name in names:
        default = PROVIDERS[name].base_url
        if default and normalise(default) == wanted:
            return Vendor(name, host)
    for name in names:  # the public host with another path (a regional or versioned endpoint)
        default = PROVIDERS[name].base_url
        if default and not PROVIDERS[name].self_hosted and _host(default) == host:
            return Vendor(name, host)
    return Vendor(sdk_provider, host, known=False)


# SDK client -> its vendor. Looked up on every instrumented call, and reading the environment and the
# client's URL costs tens of µs there, so each client is resolved once; init() and reset() forget them all
# (a base URL variable changed after that is picked up by clients made afterwards, or after the next init()).
_by_client: weakref.WeakKeyDictionary[Any, Vendor] = weakref.WeakKeyDictionary()

# SDK resource (`client.chat.completions`, `client.messages`) -> a weak reference to the client it was made for,
# the one argument of its public constructor, noted by the constructor the harness patches (`note_client`).
# The SDKs offer no public way from a resource back to its client. The value is weak because the client holds
# the resource (a cached attribute): a strong one would keep both alive for ever. Kept across reset() and
# init(): a resource made while the SDK was patched stays traced after it is patched again.
_client_of: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()
_warned: weakref.WeakSet[Any] = weakref.WeakSet()  # untraced resources already logged (once each)


def note_client(resource: object, client: object) -> None:
    """Remember that `resource` was made for `client` (called by the patched resource constructors)."""
    with contextlib.suppress(TypeError):  # an object that cannot be weakly referenced stays untraced
        _client_of[resource] = weakref.ref(client)


def client_of(resource: object) -> Any:
    """The SDK client `resource` was made for: noted by its patched constructor, or for a resource made
    before `init()`, found once among the live SDK clients (`_owner_among_clients`); None when neither
    tells."""
    try:
        ref = _client_of.get(resource)
        if ref is None and resource not in _searched:
            _searched.add(resource)
            owner = _owner_among_clients(resource)
            if owner is not None:
                note_client(resource, owner)
                return owner
    except TypeError:  # cannot be weakly referenced: never noted
        return None
    return ref() if ref is not None else None


# Resources looked for among the live clients already (found or not): the search walks the heap, so it runs
# once per resource, on its first instrumented call.
_searched: weakref.WeakSet[Any] = weakref.WeakSet()
_CLIENT_CLASSES = (("openai", ("OpenAI", "AsyncOpenAI")), ("anthropic", ("Anthropic", "AsyncAnthropic")))
_SEARCH_DEPTH = 3  # client.chat.completions, client.beta.chat.completions, client.responses, client.messages


def _owner_among_clients(resource: object) -> Any:
    """The live SDK client that holds `resource` under one of its public attributes (`client.chat.completions`
    and the like), for a resource made before the harness patched its constructor. The SDKs keep a
    resource as a cached attribute of its client, so the client that made it holds it; the live clients are
    found with `gc.get_objects()` and followed through their public attributes only. That walks every live
    object, so it runs once per such resource (`_searched`), on its first instrumented call."""
    classes = tuple(getattr(sys.modules[module], name) for module, names in _CLIENT_CLASSES
                    if module in sys.modules for name in names if hasattr(sys.modules[module], name))
    if not classes:
        return None
    for candidate in gc.get_objects():
        # type(), not isinstance(): a proxy object (the SDKs have some) answers __class__ with what it stands for
        if issubclass(type(candidate), classes) and _holds(candidate, resource, _SEARCH_DEPTH):
            return candidate
    return None


def _holds(holder: object, resource: object, depth: int) -> bool:
    """Whether `resource` is reachable from `holder` through public attributes already set (vars(): reading
    an attribute would make a cached resource that does not exist yet), at most `depth` steps down."""
    try:
        attributes = vars(holder)
    except TypeError:  # no __dict__
        return False
    for name, value in attributes.items():
        if name.startswith("_"):
            continue
        if value is resource or (depth > 1 and _holds(value, resource, depth - 1)):
            return True
    return False


def vendor_of(sdk_provider: str, resource: object) -> Vendor:
    """The vendor of the client an SDK resource (`client.chat.completions`, `client.messages`) belongs to;
    the client's key (`client.api_key`) is remembered for redaction. A resource whose client cannot be told
    (made on its own, not held by a live client) has an unknown vendor (`UNTRACED`, see `Vendor.why_unknown`)."""
    client = client_of(resource)
    if client is None:
        return _untraced(sdk_provider, resource)
    try:
        found = _by_client.get(client)
    except TypeError:  # a client that cannot be weakly referenced: resolved on every call
        found = None
    # The client's key, read on every call (a client built before init() never passed through the patched
    # constructor, and a key may be rotated on the client): scrubbed from every error text stored or printed.
    remember_secret(getattr(client, "api_key", None))
    if found is None:
        url = getattr(client, "base_url", None)
        found = vendor_for(sdk_provider, str(url) if url is not None else None)
        with contextlib.suppress(TypeError):
            _by_client[client] = found
    return found


def _untraced(sdk_provider: str, resource: object) -> Vendor:
    vendor = Vendor(sdk_provider, UNTRACED, known=False)
    try:
        first = resource not in _warned
        _warned.add(resource)
    except TypeError:
        first = True
    if first:
        log.warning("cascadeflow: calls on this %s fall under the unknown-price policy: %s",
                    type(resource).__name__, vendor.why_unknown())
    return vendor


def forget_clients() -> None:
    """Resolve every client's vendor again on its next call (after the configuration changed)."""
    _by_client.clear()
