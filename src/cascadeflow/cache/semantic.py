"""`SemanticIndex`: embeds the last user message and finds the closest cached one in the same scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SemanticIndex:
    """Cosine similarity over unit vectors (a dot product), exact, over one scope's entries at a time.

    A scope holds only requests that are identical apart from the last user message's text, so it stays
    small; an exact scan of a few thousand 384-wide rows is one matrix product."""

    def __init__(self, embedder: Any, *, similarity: float):
        self.embedder = embedder
        self.similarity = similarity

    def vector(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([text])[0], dtype=np.float32)

    def best(self, query: np.ndarray, candidates: Sequence[tuple[str, bytes]]) -> tuple[str, float] | None:
        """The closest candidate at or above the threshold, as (key, similarity); None when none is."""
        if not candidates:
            return None
        width = query.shape[0]
        rows = [np.frombuffer(vector, dtype=np.float32) for _, vector in candidates]
        usable = [i for i, row in enumerate(rows) if row.shape[0] == width]  # another model's vectors: skip
        if not usable:
            return None
        scores = np.vstack([rows[i] for i in usable]) @ query
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < self.similarity:
            return None
        return candidates[usable[best]][0], score
