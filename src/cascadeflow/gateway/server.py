"""`serve(config)`: run the gateway under uvicorn (what `cascadeflow serve` does), refusing an address beyond
loopback when no key store is configured."""

from __future__ import annotations

import gc
import logging

from cascadeflow.errors import ConfigurationError, UnsafeBind
from cascadeflow.gateway.config import GatewayConfig

log = logging.getLogger(__name__)

# A request allocates a few hundred container objects, which reference counting frees when it ends. With
# Python's default threshold of the youngest generation (700) a collection ran every few requests: it moved
# the objects of the requests in flight to older generations, where they died and kept full collections,
# which walk every object of the process, coming. With this threshold they are rare, and the young
# collections scan mostly garbage already freed (the CPU per request before and after: docs/benchmarks.md,
# "Gateway").
YOUNG_GC_THRESHOLD = 10_000


def check_bind(config: GatewayConfig) -> None:
    """UnsafeBind unless the gateway has a key store or listens on loopback only."""
    if config.keys is None and not config.loopback_only:
        raise UnsafeBind(config.host)


def tune_gc_for_serving() -> None:
    """Set the process's garbage collector up for a server: what start-up built (modules, price tables, the
    app) is frozen out of every later collection, as it lives as long as the process, and the youngest
    generation is collected less often (`YOUNG_GC_THRESHOLD`)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, oldest)


def serve(config: GatewayConfig) -> None:
    """Serve until interrupted; on SIGTERM/SIGINT in-flight calls finish (or settle) within the grace time.
    The process is the server's: its garbage collector is tuned for serving (`tune_gc_for_serving`)."""
    check_bind(config)
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError('the gateway needs its extra: pip install "cascadeflow[gateway]"') from None
    from cascadeflow.gateway.app import create_app

    app = create_app(config)
    tune_gc_for_serving()
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=int(config.shutdown_grace_seconds), lifespan="on",
                http="auto", loop="auto")
