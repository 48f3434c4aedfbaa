"""`python -m cascadeflow_incidents.web` (`make serve`): the live app on loopback, over a data directory.

Settings come from `CASCADEFLOW_INCIDENTS_*` variables; the options here override them. Without an API
token one is generated for this run and printed here (the pages never show it)."""

from __future__ import annotations

import argparse
import secrets
import sys

from pydantic import SecretStr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cascadeflow_incidents.web", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default .cascadeflow/incidents, or $CASCADEFLOW_INCIDENTS_DIR)")
    parser.add_argument("--scenarios", help="folder of recorded scenarios to offer (default <data>/scenarios)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--plan", help="embedded | cheap | strong | cascade | none (analyzers only)")
    args = parser.parse_args(argv)

    import uvicorn

    from .app import create_app
    from .settings import IncidentWebSettings

    overrides = {k: v for k, v in (("data_dir", args.data), ("scenarios_dir", args.scenarios), ("host", args.host),
                                   ("port", args.port), ("plan", args.plan)) if v is not None}
    settings = IncidentWebSettings(**overrides)
    generated = settings.api_token is None
    if generated:
        settings = settings.model_copy(update={"api_token": SecretStr(secrets.token_urlsafe(24))})
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.port
        print(f"IncidentOS: http://{settings.host}:{port}/  (data: {settings.data_dir})", flush=True)
        if generated and settings.api_token is not None:
            print(f"API token for this run (sign in on the page; write endpoints take 'Authorization: Bearer'): "
                  f"{settings.api_token.get_secret_value()}", flush=True)

    import asyncio

    async def run() -> None:
        await asyncio.gather(server.serve(), announce())

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
