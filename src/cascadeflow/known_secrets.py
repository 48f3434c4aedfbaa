"""The exact secret values in use (provider keys from the environment and configuration, the SDK clients' keys,
every `Secret`), remembered so that the redaction (trace/redact.py) replaces them wherever text is stored or
printed, whatever their shape.

Process-wide on purpose: an error can echo any of them, and nothing else knows which key a host saw. It sits
at the bottom of the layers so that whoever meets a key (a `Secret` as it is made, the harness, the SDK
instrumentation) hands it over without depending on the redaction that reads it.
"""

from __future__ import annotations

import threading

MIN_SECRET_CHARS = 8  # shorter values are not remembered: replacing them would mangle ordinary text
MAX_SECRETS = 256

_remembered: dict[str, None] = {}  # insertion-ordered set; the oldest leaves first when full
_snapshot: tuple[str, ...] = ()  # what readers iterate: replaced whole, so a reader never sees it change
_lock = threading.Lock()


def remember_secret(value: object) -> None:
    """Scrub `value` (an API key, a password) from every text redacted from now on."""
    global _snapshot
    if not isinstance(value, str) or len(value) < MIN_SECRET_CHARS or value in _remembered:
        return
    with _lock:
        if len(_remembered) >= MAX_SECRETS:
            del _remembered[next(iter(_remembered))]
        _remembered[value] = None
        _snapshot = tuple(_remembered)


def known_secrets() -> tuple[str, ...]:
    """The values remembered so far, oldest first (at most MAX_SECRETS)."""
    return _snapshot
