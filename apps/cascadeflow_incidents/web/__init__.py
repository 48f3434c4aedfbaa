"""IncidentOS in the browser: a FastAPI app over a data directory (`create_app`), its pages, the live
event stream, and a one-file static snapshot (`write_snapshot`).

Importing this package needs nothing beyond the standard library; `create_app` needs the `web` extra
(fastapi, uvicorn, jinja2), `write_snapshot` only jinja2."""

from __future__ import annotations

from typing import Any

from cascadeflow.lazy import lazy_attribute

from .datadir import DEFAULT_DATA_DIR, DataDir

__all__ = ["DEFAULT_DATA_DIR", "DataDir", "create_app", "write_snapshot"]


_HOME = {"create_app": "app", "write_snapshot": "snapshot"}


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _HOME, name, needs_extra="web")
