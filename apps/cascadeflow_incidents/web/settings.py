"""The web app's settings: one pydantic-settings object, read from `CASCADEFLOW_INCIDENTS_*` environment
variables (and the data directory from `CASCADEFLOW_INCIDENTS_DIR`), overridable in code."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .datadir import DEFAULT_DATA_DIR


class IncidentWebSettings(BaseSettings):
    """What the app shows, who may write, and how it investigates.

    `api_token` guards every write endpoint (starting or cancelling an investigation, memory write-back,
    draining the queue); `webhook_secret` guards alert intake (Alertmanager's `authorization.credentials`
    or Grafana's basic-auth password); when it is unset the API token is the webhook secret too. Without an
    API token every write endpoint refuses: `python -m cascadeflow_incidents.web` generates one per start
    and prints it on the terminal, never in a page."""

    model_config = SettingsConfigDict(env_prefix="CASCADEFLOW_INCIDENTS_", frozen=True, extra="ignore")

    data_dir: Path = Field(DEFAULT_DATA_DIR, validation_alias=AliasChoices("data_dir", "CASCADEFLOW_INCIDENTS_DIR"))
    scenarios_dir: Path | None = None  # default: <data_dir>/scenarios, else the samples shipped with the app
    api_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    plan: str = "embedded"  # embedded | cheap | strong | cascade | none (analyzers only, no model call)
    cheap_model: str | None = None  # provider/model, for the cloud plans
    strong_model: str | None = None
    budget_usd: float = Field(0.05, gt=0)  # per investigation
    daily_budget_usd: float | None = Field(1.0, gt=0)  # the day's budget across investigations
    max_loops: int = Field(3, ge=1, le=10)
    max_concurrent: int = Field(4, ge=1, le=64)
    auto_investigate: bool = True  # a firing alert from a webhook starts an investigation at once
    evidence_dir: Path | None = None  # recorded evidence for webhook alerts (<kind>.json)
    kubernetes_url: str | None = None  # live, read-only sources for webhook alerts
    kubernetes_token: SecretStr | None = None
    prometheus_url: str | None = None
    loki_url: str | None = None
    runbooks_dir: Path | None = None
    max_alert_bytes: int = Field(1_000_000, ge=1024)

    def scenario_root(self) -> Path:
        if self.scenarios_dir is not None:
            return self.scenarios_dir
        own = self.data_dir / "scenarios"
        if own.is_dir():
            return own
        # an installed app with a fresh data directory still offers the recorded sample scenarios
        return Path(str(files("cascadeflow_incidents").joinpath("data", "scenarios")))

    def intake_secret(self) -> SecretStr | None:
        return self.webhook_secret or self.api_token
