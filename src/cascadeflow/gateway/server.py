"""`serve(config)`: run the gateway under uvicorn (what `cascadeflow serve` does), refusing an address beyond
loopback when no key store is configured."""

from __future__ import annotations

import logging

from cascadeflow.errors import ConfigurationError, UnsafeBind
from cascadeflow.gateway.config import GatewayConfig

log = logging.getLogger(__name__)


def check_bind(config: GatewayConfig) -> None:
    """UnsafeBind unless the gateway has a key store or listens on loopback only."""
    if config.keys is None and not config.loopback_only:
        raise UnsafeBind(config.host)


def serve(config: GatewayConfig) -> None:
    """Serve until interrupted; on SIGTERM/SIGINT in-flight calls finish (or settle) within the grace time."""
    check_bind(config)
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError('the gateway needs its extra: pip install "cascadeflow[gateway]"') from None
    from cascadeflow.gateway.app import create_app

    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=int(config.shutdown_grace_seconds), lifespan="on",
                http="auto", loop="auto")
