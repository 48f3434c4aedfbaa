"""IncidentOS in the browser: a FastAPI app over a data directory (`create_app`), its pages, the live
event stream, and a one-file static snapshot (`write_snapshot`).

Importing this package needs nothing beyond the standard library; `create_app` needs the `web` extra
(fastapi, uvicorn, jinja2), `write_snapshot` only jinja2."""

from __future__ import annotations

from typing import Any

from .datadir import DEFAULT_DATA_DIR, DataDir

__all__ = ["DEFAULT_DATA_DIR", "DataDir", "create_app", "write_snapshot"]


_HOME = {"create_app": "app", "write_snapshot": "snapshot"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    try:
        module = import_module(f"{__name__}.{home}")
    except ImportError as exc:
        from cascadeflow import ConfigurationError

        raise ConfigurationError(f"{name} needs the web extra ({exc.name} is missing): "
                                 f'pip install "cascadeflow[web]"') from exc
    return getattr(module, name)
