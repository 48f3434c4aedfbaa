"""Incident memory: SQLite store, recall by meaning and keywords with recency decay, reflection insights."""

from .embedding import Embedder, HashingEmbedder, default_embedder
from .insights import Insight, reflect
from .store import DEFAULT_HALF_LIFE_DAYS, IncidentRecord, MemoryStore, ReadOnlyMemory, Recall, recency
from .writeback import record_from, remember

__all__ = ["DEFAULT_HALF_LIFE_DAYS", "Embedder", "HashingEmbedder", "IncidentRecord", "Insight", "MemoryStore",
           "ReadOnlyMemory", "Recall", "default_embedder", "recency", "record_from", "reflect", "remember"]
