"""The harness: `init` / `reset`, run scopes (`run`, `agent`), policies, compliance, KPI and SDK instrumentation."""

from cascadeflow.harness.compliance import PRESETS, CompliancePolicy, load_compliance
from cascadeflow.harness.config import ENV_MODE, MODES, HarnessConfig
from cascadeflow.harness.instrument import patched_methods as instrument_patched
from cascadeflow.harness.kpi import KPI_DIMENSIONS, choose_model
from cascadeflow.harness.scope import RunScope, agent, current_run, run
from cascadeflow.harness.state import current_config, default_runtime, init, model_stats, reset
from cascadeflow.harness.stats import ModelStats
from cascadeflow.harness.threads import ContextThreadPoolExecutor, spawn_thread

__all__ = [
    "ENV_MODE",
    "KPI_DIMENSIONS",
    "MODES",
    "PRESETS",
    "CompliancePolicy",
    "ContextThreadPoolExecutor",
    "HarnessConfig",
    "ModelStats",
    "RunScope",
    "agent",
    "choose_model",
    "current_config",
    "current_run",
    "default_runtime",
    "init",
    "instrument_patched",
    "load_compliance",
    "model_stats",
    "reset",
    "run",
    "spawn_thread",
]
