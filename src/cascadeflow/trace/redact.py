"""Turning an AuditRecord into the JSON a sink may store: content only when opted in, secrets never."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cascadeflow.known_secrets import MIN_SECRET_CHARS, known_secrets
from cascadeflow.trace.metadata import jsonable
from cascadeflow.trace.records import AuditRecord

REDACTED = "[redacted]"

# Shapes of provider credentials. Secret bodies never contain `"` or `\`, so the pattern can be applied to an
# already-serialised JSON line without breaking its quoting (one regex pass instead of a walk over the record).
SECRET_PATTERN = re.compile(
    r"(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, Anthropic, DeepSeek, ...
    r"|gsk_[A-Za-z0-9]{16,}"  # Groq
    r"|hf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|xai-[A-Za-z0-9]{16,}"  # xAI
    r"|pplx-[A-Za-z0-9]{16,}"  # Perplexity
    r"|AIza[0-9A-Za-z_\-]{30,}"  # Google
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|(?<=Bearer )[A-Za-z0-9._\-]{16,})"  # bearer tokens quoted inside error messages
)

# Literal prefixes of SECRET_PATTERN: substring tests are far cheaper than the regex on the usual clean line.
_SECRET_PREFIXES = ("sk-", "gsk_", "hf_", "xai-", "pplx-", "AIza", "AKIA", "Bearer ")

# Metadata keys whose values are secrets whatever they look like.
SECRET_KEY_PATTERN = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|apikey|authorization|password|passwd|secret|access[_\-]?token|"
    r"refresh[_\-]?token|bearer|private[_\-]?key)$",
    re.IGNORECASE,
)


MAX_ERROR_CHARS = 2_000  # error text stored or printed is cut here: a 5 MB server message must not become a record

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/{1,3}[^\s'\"<>]+")
# URL query parameters known to carry no secret; every other value is replaced
_PLAIN_PARAMS = frozenset({"prefix", "schema", "table", "table_prefix", "synchronous_commit", "sslmode", "db",
                           "connect_timeout", "timeout", "application_name", "api-version", "encoding"})
_URL_SCHEMES = frozenset({"http", "https", "redis", "rediss", "postgres", "postgresql", "sqlite", "memory",
                          "unix", "ws", "wss", "file"})
_KEY_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key)(\s*[=:]\s*)"
                        r"([^\s&#,;'\"]+)")
# Every _KEY_VALUE name ends in one of these; a cheap test for "name, optional blanks, = or :" lets the
# usual line (JSON, where a name is followed by a quote) skip the case-insensitive regex, which is the dearest
# pass over a record. casefold() folds what re.IGNORECASE folds (the long s, the Kelvin sign).
_KEY_VALUE_ENDS = ("password", "passwd", "pwd", "secret", "token", "key")


def redact_url(url: str) -> str:
    """`url` safe to store or print: the userinfo's password, every query value but known plain ones and the
    fragment replaced; a URL whose scheme is not one we know (a typo such as `htps:/`) is replaced whole past
    the scheme, since its parts cannot be told apart."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return REDACTED
    scheme = parts.scheme.lower()
    if scheme not in _URL_SCHEMES or (not parts.netloc and scheme not in ("sqlite", "memory", "file", "unix")):
        return f"{parts.scheme}:{REDACTED}" if parts.scheme.isalnum() else REDACTED
    netloc = parts.netloc
    if "@" in netloc:  # the whole userinfo: some services take the key as the user name (https://KEY@host)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{REDACTED}@{host}" + (f":{port}" if port is not None else "")
    query = "&".join(
        f"{name}={value if name.lower() in _PLAIN_PARAMS else REDACTED}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair))
    return urlunsplit((parts.scheme, netloc, parts.path, query, REDACTED if parts.fragment else ""))


ECHO_GRAM = 12  # an echoed run of 2 * ECHO_GRAM - 1 characters or more is always found (see scrub_echoes)
MAX_ECHO_CHARS = 1_000_000  # of the prompt's texts indexed per error: bounds the work on a huge prompt


def scrub_echoes(text: str, echoes: Iterable[str], *, placeholder: str = "[prompt]") -> str:
    """`text` with every run it shares with one of `echoes` replaced by `placeholder`: a whole message, or a
    fragment of one (a host quoting the part of the prompt it choked on), once the run is 2 * ECHO_GRAM - 1
    characters or longer (shorter shared runs are ordinary words). Each echo is indexed by its ECHO_GRAM-long
    pieces at every ECHO_GRAM-th position, so any run that long contains one whole piece; every hit is then
    grown to the full shared run. Linear in the text and the echoes (the first MAX_ECHO_CHARS of them)."""
    if len(text) < ECHO_GRAM:
        return text
    pieces: dict[str, list[tuple[str, int]]] = {}
    budget = MAX_ECHO_CHARS
    for echoed in echoes:
        if budget <= 0:
            break
        echoed = echoed[:budget]
        budget -= len(echoed)
        if len(echoed) < MIN_SECRET_CHARS:
            continue
        if len(echoed) < ECHO_GRAM:  # a short message is matched whole
            pieces.setdefault(echoed, []).append((echoed, 0))
            continue
        for start in range(0, len(echoed) - ECHO_GRAM + 1, ECHO_GRAM):
            pieces.setdefault(echoed[start:start + ECHO_GRAM], []).append((echoed, start))
    if not pieces:
        return text
    spans = _shared_runs(text, pieces)
    if not spans:
        return text
    out, last = [], 0
    for begin, end in spans:
        out.append(text[last:begin])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    return "".join(out)


def _shared_runs(text: str, pieces: dict[str, list[tuple[str, int]]]) -> list[tuple[int, int]]:
    """The merged (begin, end) spans of `text` that repeat an indexed echo (see scrub_echoes)."""
    lengths = sorted({len(piece) for piece in pieces})
    spans: list[tuple[int, int]] = []
    reach = 0  # text before here is already inside a found span
    for i in range(len(text)):
        if i < reach:
            continue
        for size in lengths:
            hits = pieces.get(text[i:i + size])
            if not hits:
                continue
            for echoed, start in hits[:8]:  # a piece repeated in the prompt: a few of its places suffice
                begin, j = i, start
                while begin > 0 and j > 0 and text[begin - 1] == echoed[j - 1]:
                    begin, j = begin - 1, j - 1
                end, k = i + size, start + size
                while end < len(text) and k < len(echoed) and text[end] == echoed[k]:
                    end, k = end + 1, k + 1
                if end - begin >= min(len(echoed), 2 * ECHO_GRAM - 1):
                    spans.append((begin, end))
                    reach = max(reach, end)
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def error_text(error: BaseException, *, echoes: Iterable[str] = ()) -> str:
    """`Type: message` of an error, fit to store in a record (`safe_error_text`)."""
    if not isinstance(error, Exception):
        return type(error).__name__
    return safe_error_text(f"{type(error).__name__}: {error}", echoes=echoes)


def redact_text(text: str) -> str:
    """`text` with every credential removed: the exact key values in use (`known_secrets.remember_secret`),
    credential-shaped substrings (`sk-...`, `Bearer ...`), `password=...`-style pairs, and the secret parts of
    URLs."""
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text or ":/" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    if ("=" in text or ":" in text) and _may_hold_key_value(text):
        text = _KEY_VALUE.sub(_redacted_pair, text)
    return SECRET_PATTERN.sub(REDACTED, text) if _has_secret_prefix(text) else text


def _redacted_pair(match: re.Match[str]) -> str:
    # A value's trailing backslashes are kept: in a JSON line they escape the quote that ends the value
    # (`token=abc\"`), and dropping them would end the string early and break the line.
    value = match.group(3)
    return match.group(1) + match.group(2) + REDACTED + value[len(value.rstrip("\\")):]


def _may_hold_key_value(text: str) -> bool:
    """Whether `_KEY_VALUE` can match: some name it knows is followed by optional blanks and `=` or `:`."""
    folded = text.casefold()
    size = len(folded)
    for end in _KEY_VALUE_ENDS:
        at = folded.find(end)
        while at >= 0:
            after = at + len(end)
            while after < size and folded[after].isspace():
                after += 1
            if after < size and folded[after] in "=:":
                return True
            at = folded.find(end, at + 1)
    return False


def safe_error_text(text: str, *, echoes: Iterable[str] = (), limit: int = MAX_ERROR_CHARS) -> str:
    """Error text fit to store or print: credentials redacted (`redact_text`), whatever `echoes` (the prompt's
    texts, which a host may echo back whole or in parts) it repeats replaced (`scrub_echoes`), and cut to
    `limit` characters."""
    if len(text) > 4 * limit:  # a huge message is cut first, so the passes below stay cheap
        text = text[:4 * limit]
    text = scrub_echoes(text, echoes)
    text = redact_text(text)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters cut]"


_secret_keys: dict[str, bool] = {}  # metadata key -> SECRET_KEY_PATTERN matches it (callers reuse few keys)
MAX_CACHED_KEYS = 4096


def _is_secret_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    found = _secret_keys.get(key)
    if found is None:
        if len(_secret_keys) >= MAX_CACHED_KEYS:
            _secret_keys.clear()
        found = _secret_keys[key] = SECRET_KEY_PATTERN.search(key) is not None
    return found


_SCALARS = frozenset({str, int, float, bool, type(None)})  # returned as they are: no keys inside


def _redact_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        # scalars skip the call and the Mapping ABC check (the usual metadata value is a string or a number)
        return {k: (REDACTED if _is_secret_key(k) else v if type(v) in _SCALARS else _redact_keys(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_keys(v) for v in value]
    return value


_FIELDS = tuple(f.name for f in fields(AuditRecord))


def record_payload(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a dict, before secret-pattern redaction (see `record_line`): `AuditRecord.to_dict()`'s
    shape (caller metadata also lifted to the top level, prompt and answer only when set) with secret-named
    metadata keys replaced, and prompt and answer only with `record_content`."""
    out = {name: getattr(record, name) for name in _FIELDS}  # not asdict's deep copy: json.dumps copies
    for key, value in record.metadata.items():
        out.setdefault(key, value)
    if record.metadata:
        safe_metadata = _redact_keys(record.metadata)
        out["metadata"] = safe_metadata
        for key, value in safe_metadata.items():  # to_dict lifted metadata keys to the top level
            if key in out and out[key] is record.metadata.get(key):
                out[key] = value
    if not record_content or record.prompt is None:
        out.pop("prompt", None)
    if not record_content or record.answer is None:
        out.pop("answer", None)
    return out


def _has_secret_prefix(text: str) -> bool:
    # _SECRET_PREFIXES spelled out: one expression instead of a generator over the tuple, on every line
    return ("sk-" in text or "gsk_" in text or "hf_" in text or "xai-" in text or "pplx-" in text
            or "AIza" in text or "AKIA" in text or "Bearer " in text)


def _needs_redaction(text: str) -> bool:
    """Whether a line may hold a credential `redact_text` removes (a shape, or a key value in use)."""
    return _has_secret_prefix(text) or any(secret in text for secret in known_secrets())


def record_line(record: AuditRecord, *, record_content: bool = False) -> str:
    """One JSON line (no trailing newline) with secrets removed: `json.dumps` of `record_payload`, then
    credential-shaped substrings replaced."""
    line = json.dumps(record_payload(record, record_content=record_content), default=jsonable,
                      ensure_ascii=False, separators=(",", ":"))
    return redact_text(line)


def redacted_dict(record: AuditRecord, *, record_content: bool = False) -> dict[str, Any]:
    """The record as a JSON-compatible dict with secrets removed (for sinks that store fields)."""
    return json.loads(record_line(record, record_content=record_content))
