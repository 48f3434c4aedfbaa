"""`cascadeflow metrics`: serve the summed metrics of worker processes; print the dashboard and alert rules."""

from __future__ import annotations

from typing import Annotated

import typer

from cascadeflow.cli import app
from cascadeflow.errors import ConfigurationError
from cascadeflow.metrics import asset_path

metrics_app = typer.Typer(no_args_is_help=True, help="Prometheus metrics: serve them, get the dashboard and rules.")
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("serve")
def serve(port: Annotated[int, typer.Option("--port", help="Port to serve /metrics on.")] = 9090,
          addr: Annotated[str, typer.Option("--addr", help="Address to listen on.")] = "0.0.0.0",
          directory: Annotated[str | None, typer.Option(
              "--dir", help="The workers' PROMETHEUS_MULTIPROC_DIR (default: that variable).")] = None) -> None:
    """Serve, for Prometheus, the metrics every worker process wrote to PROMETHEUS_MULTIPROC_DIR, summed."""
    from cascadeflow.metrics.prometheus import prometheus_client, serving_registry

    try:
        registry = serving_registry(path=directory)
        server, thread = prometheus_client().start_http_server(port, addr=addr, registry=registry)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot listen on {addr}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"serving metrics on http://{addr}:{server.server_address[1]}/metrics (Ctrl-C stops)")
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


@metrics_app.command("dashboard")
def dashboard() -> None:
    """Print the Grafana dashboard JSON (import it in Grafana: Dashboards > New > Import)."""
    typer.echo(asset_path("grafana-dashboard.json").read_text(encoding="utf-8"), nl=False)


@metrics_app.command("rules")
def rules() -> None:
    """Print the Prometheus alert rules (add the file to `rule_files` in prometheus.yml)."""
    typer.echo(asset_path("prometheus-alerts.yml").read_text(encoding="utf-8"), nl=False)
