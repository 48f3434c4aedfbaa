"""`cascadeflow cache stats` and `cascadeflow cache clear`: read or empty a SQLite or Redis response cache.

A memory cache lives inside its process, so only the shared backends can be inspected from here.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cascadeflow.cache.config import DEFAULT_SQLITE_PATH, CacheConfig
from cascadeflow.cache.store import ResponseCache
from cascadeflow.cli import app
from cascadeflow.errors import ConfigurationError

cache_app = typer.Typer(no_args_is_help=True, help="Inspect or empty the response cache (SQLite or Redis).")
app.add_typer(cache_app, name="cache")

BackendOpt = Annotated[str, typer.Option("--backend", help="sqlite or redis.")]
PathOpt = Annotated[str, typer.Option("--path", help="The SQLite cache file.")]
RedisOpt = Annotated[str | None, typer.Option("--redis-url", help="The Redis server (default redis://localhost:6379).")]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="The CacheConfig.key_prefix the application uses.")]


def _open(backend: str, path: str, redis_url: str | None, prefix: str) -> ResponseCache:
    if backend not in ("sqlite", "redis"):
        raise typer.BadParameter("a memory cache lives inside its process; use --backend sqlite or redis",
                                 param_hint="--backend")
    try:
        return ResponseCache(CacheConfig(backend=backend, sqlite_path=path, redis_url=redis_url,  # type: ignore[arg-type]
                                         key_prefix=prefix))
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc)) from exc


@cache_app.command("stats")
def stats(backend: BackendOpt = "sqlite", path: PathOpt = DEFAULT_SQLITE_PATH, redis_url: RedisOpt = None,
          prefix: PrefixOpt = "cascadeflow:cache:",
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Entries, hits, misses, hit rate and the cost the hits saved."""
    cache = _open(backend, path, redis_url, prefix)
    try:
        figures = cache.stats()
    finally:
        cache.close()
    if as_json:
        typer.echo(json.dumps(figures, sort_keys=True))
        return
    table = Table(title=f"response cache ({figures['backend']})", show_header=False)
    for name in ("entries", "hits", "semantic_hits", "misses", "observed_hits", "stores"):
        table.add_row(name.replace("_", " "), str(figures[name]))
    table.add_row("hit rate", f"{figures['hit_rate']:.1%}")
    table.add_row("saved", f"${figures['saved_usd']:.6f}")
    Console().print(table)


@cache_app.command("clear")
def clear(backend: BackendOpt = "sqlite", path: PathOpt = DEFAULT_SQLITE_PATH, redis_url: RedisOpt = None,
          prefix: PrefixOpt = "cascadeflow:cache:") -> None:
    """Remove every entry (and the counters) under the prefix."""
    cache = _open(backend, path, redis_url, prefix)
    try:
        removed = cache.clear()
    finally:
        cache.close()
    typer.echo(f"removed {removed} cached answer{'s' if removed != 1 else ''}")
