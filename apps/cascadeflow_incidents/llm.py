"""Which model does which task: the investigation's task types routed through a cascadeflow ModelRouter,
one plan per configuration (the embedded model offline; cheap only, strong only, or the cascade)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cascadeflow import ConfigurationError, ModelConfig, ModelRouter, PriceBook, TaskType

# A diagnosis that failed validation is reviewed by the strongest model the plan has.
ROOT_CAUSE_REVIEW = TaskType.register(
    "root_cause_review", "a diagnosis that failed validation escalates to the strongest model")
POSTMORTEM = TaskType.register("postmortem", "post-mortems correlate logs, deploys and remediation")

# Declared machine-time price of the embedded model (a small cloud VM), so budgets hold real numbers.
# Reservations assume a fraction of the measured speed (~50 tokens/s generated, several hundred read)
# because a shared machine under load reads a prompt several times slower; the reserved time bounds
# generation, so too fast an assumption ends answers before they start.
LOCAL_PRICE_PER_HOUR = 0.40
LOCAL_EXTRA = {"min_tokens_per_second": 10, "min_prompt_tokens_per_second": 40, "seed": 7}
PLANS = ("embedded", "cheap", "strong", "cascade")
# Which plan answers an alert of each severity when severity decides: a page (P0/P1) gets the strong tier
# for every step, a warning drafts on the cheap tier and escalates when the draft fails, routine alerts
# and notices stay on the cheap tier.
SEVERITY_PLANS = {"P0": "strong", "P1": "strong", "P2": "cascade", "P3": "cheap", "INFO": "cheap"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPlan:
    """A router plus the tier of each model id it may pick ('cheap' or 'strong'), for calls-per-tier."""

    name: str
    router: ModelRouter
    tiers: Mapping[str, str] = field(default_factory=dict)
    label: str = ""

    def premium(self) -> ModelConfig | None:
        """The strongest model the plan routes to (the review tier): what "all-premium" is priced at."""
        route = self.router.route(ROOT_CAUSE_REVIEW)
        return route.models[-1] if route and route.models else None

    def tier_of(self, model_id: str) -> str:
        bare = model_id.split("/", 1)[-1]
        return self.tiers.get(model_id) or self.tiers.get(bare) or "unknown"


def _local(name: str) -> ModelConfig:
    return ModelConfig(name=name, provider="local", compute_cost_per_hour=LOCAL_PRICE_PER_HOUR, extra=LOCAL_EXTRA)


def _register(router: ModelRouter, cheap: ModelConfig | list[ModelConfig], strong: ModelConfig,
              reasoning: ModelConfig | list[ModelConfig]) -> ModelRouter:
    router.register(TaskType.MEMORY_RECALL, model=cheap,
                    reason="memory recall is a lightweight semantic search task: the cheap tier is enough")
    router.register(TaskType.SIMPLE_CLASSIFICATION, model=cheap,
                    reason="classifying an alert is a simple task: the cheap tier is enough")
    router.register(TaskType.DATA_RETRIEVAL, model=cheap,
                    reason="summarising tool output needs little reasoning: the cheap tier is enough")
    router.register(TaskType.COMPLEX_REASONING, model=reasoning,
                    reason="root-cause reasoning across evidence needs the most capable model the plan allows")
    router.register(ROOT_CAUSE_REVIEW, model=strong,
                    reason="the diagnosis failed validation: escalate to the strong tier")
    router.register(POSTMORTEM, model=strong, reason="post-mortems synthesise the whole incident: strong tier")
    return router


def embedded_plan() -> ModelPlan:
    """Offline, no key: the embedded SmolLM2-135M on both tiers (reasoning drafts on the cheap tier, a
    rejected diagnosis is reviewed on the strong one); the analyzers carry the diagnosis when neither
    answer validates."""
    cheap, strong = _local("smollm2-135m"), _local("smollm2-135m-instruct")
    router = _register(ModelRouter(), cheap, strong, cheap)
    return ModelPlan(name="embedded", router=router, tiers={cheap.id: "cheap", strong.id: "strong"},
                     label="the embedded SmolLM2-135M (llama.cpp), offline")


def priced_local(name: str, like: str, price_book: PriceBook | None = None) -> ModelConfig:
    """The embedded model as `local/<name>`, priced per token at the published rates of the cloud model
    `like` ('provider/model', from genai-prices): what a call costs depends on its tokens, not on how busy
    this machine is, and the tier it stands in for keeps its price relation to the other tiers."""
    rates = (price_book or PriceBook()).rates(like)
    return ModelConfig(name=name, provider="local", input_price_per_million=rates.input,
                       output_price_per_million=rates.output, extra={"seed": LOCAL_EXTRA["seed"]})


def severity_plans(cheap: str | ModelConfig, strong: str | ModelConfig) -> dict[str, ModelPlan]:
    """One plan per severity (`SEVERITY_PLANS`), all over the same cheap and strong models."""
    return {severity: cloud_plan(mode, cheap, strong) for severity, mode in SEVERITY_PLANS.items()}


def cloud_plan(mode: str, cheap: str | ModelConfig, strong: str | ModelConfig) -> ModelPlan:
    """`cheap` only, `strong` only, or the `cascade` (reasoning drafts on cheap, escalates to strong)."""
    if mode not in ("cheap", "strong", "cascade"):
        raise ConfigurationError(f"plan must be one of {', '.join(PLANS)}, got {mode!r}")
    cheap_cfg, strong_cfg = model_config(cheap), model_config(strong)
    if mode == "cheap":
        router = _register(ModelRouter(), cheap_cfg, cheap_cfg, cheap_cfg)
    elif mode == "strong":
        router = _register(ModelRouter(), strong_cfg, strong_cfg, strong_cfg)
    else:
        router = _register(ModelRouter(), cheap_cfg, strong_cfg, [cheap_cfg, strong_cfg])
    return ModelPlan(name=mode, router=router, tiers={cheap_cfg.id: "cheap", strong_cfg.id: "strong"},
                     label=f"{mode}: {cheap} / {strong}")


def model_config(model: str | ModelConfig) -> ModelConfig:
    """'provider/model' as a ModelConfig (a ModelConfig is returned as is)."""
    if isinstance(model, ModelConfig):
        return model
    provider, sep, name = model.partition("/")
    if not sep or not name:
        raise ConfigurationError(f"a model is 'provider/model', got {model!r}")
    return ModelConfig(name=name, provider=provider)


def plan_for(name: str, *, cheap: str | ModelConfig | None = None, strong: str | ModelConfig | None = None
             ) -> ModelPlan:
    if name == "embedded":
        return embedded_plan()
    if not cheap or not strong:
        raise ConfigurationError(f"plan {name!r} needs cheap= and strong= models ('provider/model')")
    return cloud_plan(name, cheap, strong)
