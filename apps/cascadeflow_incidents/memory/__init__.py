"""Incident memory: SQLite store (PostgreSQL for a team), recall by meaning and keywords with recency decay,
reflection insights, write-back after resolution."""

import importlib.util

from cascadeflow import ConfigurationError

if importlib.util.find_spec("numpy") is None:  # checked before any submodule imports it
    raise ConfigurationError("the incident agent's memory and runbooks need numpy: "
                             'pip install "cascadeflow[incidents]"')

from .embedding import Embedder, HashingEmbedder, default_embedder
from .insights import Insight, reflect
from .postgres import PostgresMemoryStore, open_memory
from .store import (
    DEFAULT_HALF_LIFE_DAYS,
    IncidentRecord,
    MemoryStore,
    MemorySystem,
    ReadOnlyMemory,
    Recall,
    recency,
)
from .writeback import record_from, remember

__all__ = ["DEFAULT_HALF_LIFE_DAYS", "Embedder", "HashingEmbedder", "IncidentRecord", "Insight", "MemoryStore",
           "MemorySystem", "PostgresMemoryStore", "ReadOnlyMemory", "Recall", "default_embedder", "open_memory",
           "recency", "record_from", "reflect", "remember"]
