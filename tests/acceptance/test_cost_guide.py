"""The cost optimisation guide: choosing a drafter, tuning the threshold, domain and self-hosted drafters,
analytics, per-user and per-feature cost, budgets, ROI and break-even arithmetic, seasonal thresholds,
hybrid and multi-tier cascades, pitfalls, and the monthly report with its recommendations. Its plain-text
blocks (worked arithmetic, a dashboard panel list) are not code and have no test.

Features covered:
- working: `ModelConfig(name=, provider=, cost=<USD per 1K tokens>)` for openai, anthropic, groq, ollama and
  vllm models; `CascadeAgent(models=[...])` with two and three tiers; `await agent.evaluate(test_queries)`
  -> drafter_acceptance, avg_cost, avg_quality; `QualityConfig(confidence_threshold=)` and
  `QualityConfig(threshold=)`; `DomainConfig(domains={...})` and `CascadeAgent(domain_config=)`;
  `get_analytics()` -> total_queries, total_cost, avg_cost_per_query, drafter_acceptance_rate,
  cost_savings_pct, drafter_usage, verifier_usage, baseline_cost, total_savings, savings_pct,
  expensive_queries, drafter_acceptance, avg_quality, budget; `agent.run(query, user_id=)`;
  `result.total_cost` as float USD (summed, sorted, used in float arithmetic); `BudgetConfig(daily_limit=,
  on_limit_exceeded=, grace_period=)` and `CascadeAgent(budget_config=)`; `UserBudget(daily=, monthly=)`;
  `BudgetExceededError`; `CascadeAgent(on_query_complete=)`; `UserBudget.spend()` and `daily_remaining`
  as a tally of the caller's own; a model name without a provider that cannot
  be inferred is refused with an error saying how to name it; `CacheConfig(enabled=, ttl=, backend="redis",
  redis_url=)` and `CascadeAgent(cache_config=)` serving a repeated query at $0 (caching + cascading on
  Redis; the caching pitfall on memory)
- working: `agent.run_queries(past_queries)` and `CostForecaster().predict(historical_data=agent.get_analytics(),
  days_ahead=, growth_rate=)` (the analytics keep the cost per day); anomaly detection, Prometheus metrics,
  alert rules
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from loopback import Reply

from cascadeflow import (
    BudgetConfig,
    BudgetExceededError,
    CascadeAgent,
    ConfigurationError,
    DomainConfig,
    ModelConfig,
    QualityConfig,
    UserBudget,
)

ANSWER = ("Postgres WAL grows when a replication slot lags: drop the stale slot on db-7 and the disk usage "
          "falls back; then check the archive_command.")
test_queries = [
    ("Why does the Postgres disk on db-7 keep filling with WAL after the deploy?", "replication slot"),
    ("What should I check first when WAL disk usage grows on db-7?", "slot"),
    ("How do I stop WAL segments piling up on the db-7 Postgres disk?", "archive_command"),
]
queries = [q for q, _ in test_queries]
CODE_QUERY = "Why does this return the wrong sum?\n```python\ndef add(a, b):\n    return a - b\n```"

drafter = ModelConfig(name="gpt-4o-mini", provider="openai", cost=0.00015)
verifier = ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)


@pytest.fixture(autouse=True)
def hosts(openai_server, anthropic_server):
    for host in (openai_server, anthropic_server):
        host.default = Reply(text=ANSWER, usage={"input": 60, "output": 30})
    return openai_server, anthropic_server


async def test_strategy_1_optimal_drafter_selection(capsys):
    # Test candidates
    drafters = [
        ModelConfig(name="gpt-4o-mini", provider="openai", cost=0.00015),
        ModelConfig(name="claude-3-5-haiku", provider="anthropic", cost=0.00125),
        ModelConfig(name="llama-3.2-3b", provider="groq", cost=0.00005)
    ]

    verifier = ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)

    # Evaluate each
    results = {}
    for drafter in drafters:
        agent = CascadeAgent(models=[drafter, verifier])
        metrics = await agent.evaluate(test_queries)
        results[drafter.name] = {
            "acceptance_rate": metrics.drafter_acceptance,
            "avg_cost": metrics.avg_cost,
            "quality_score": metrics.avg_quality
        }

    # Choose best drafter
    best = max(results.items(), key=lambda x: x[1]["acceptance_rate"])
    print(f"Best drafter: {best[0]} ({best[1]['acceptance_rate']:.1%} acceptance)")
    assert f"Best drafter: {best[0]}" in capsys.readouterr().out
    assert set(results) == {"gpt-4o-mini", "claude-3-5-haiku", "llama-3.2-3b"}
    for row in results.values():
        assert isinstance(row["avg_cost"], float) and row["avg_cost"] > 0 and row["quality_score"] == 1.0


async def test_strategy_2_threshold_tuning(capsys):
    thresholds = [0.5, 0.6, 0.7, 0.8, 0.9]
    results = []

    for threshold in thresholds:
        quality_config = QualityConfig(confidence_threshold=threshold)
        agent = CascadeAgent(
            models=[drafter, verifier],
            quality_config=quality_config
        )

        metrics = await agent.evaluate(test_queries)
        results.append({
            "threshold": threshold,
            "cost": metrics.avg_cost,
            "quality": metrics.avg_quality,
            "drafter_pct": metrics.drafter_acceptance
        })

    # Analyze trade-off
    for r in results:
        print(f"Threshold {r['threshold']}: "
              f"Cost ${r['cost']:.6f}, "
              f"Quality {r['quality']:.2%}, "
              f"Drafter {r['drafter_pct']:.1%}")
    assert capsys.readouterr().out.count("Threshold ") == 5
    # a higher bar accepts fewer drafts, never more
    shares = [r["drafter_pct"] for r in results]
    assert shares == sorted(shares, reverse=True)


def code_and_default_domains() -> DomainConfig:
    return DomainConfig(
        domains={
            "CODE": [
                ModelConfig(name="deepseek-coder", provider="ollama", cost=0.0),  # Free
                ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)
            ],
            "DEFAULT": [
                ModelConfig(name="gpt-4o-mini", provider="openai", cost=0.00015),
                ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)
            ]
        }
    )


async def test_strategy_3_and_pattern_3_domain_specialisation(hosts):
    openai_server, _ = hosts
    domain_config = code_and_default_domains()
    agent = CascadeAgent(domain_config=domain_config)
    code = await agent.run(CODE_QUERY)
    general = await agent.run(queries[0])
    assert code.route_label == "CODE" and code.tiers[0].model == "ollama/deepseek-coder"
    assert general.tiers[0].model == "openai/gpt-4o-mini"
    assert [r.json["model"] for r in openai_server.requests][:1] == ["deepseek-coder"]


async def test_strategy_4_self_hosted_vllm_drafter(hosts):
    openai_server, _ = hosts
    agent = CascadeAgent(models=[
        ModelConfig(name="llama-3.2-3b", provider="vllm", cost=0.0),
        ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)
    ])
    result = await agent.run(queries[0])
    assert openai_server.requests[0].json["model"] == "llama-3.2-3b"
    assert result.tiers[0].cost == 0.0


async def test_strategy_5_caching_and_cascading(hosts):
    from cascadeflow import CacheConfig

    openai_server, _ = hosts
    # Combine caching with cascading
    cache_config = CacheConfig(
        enabled=True,
        ttl=3600,
        backend="redis",
        redis_url="redis://localhost:6379"
    )

    agent = CascadeAgent(
        models=[drafter, verifier],
        cache_config=cache_config
    )
    # a question no earlier run asked, so the first call is a miss even on a long-lived Redis
    query = f"{queries[0]} (run {uuid.uuid4().hex[:8]})"
    first, second = await agent.run(query), await agent.run(query)
    assert first.total_cost > 0 and not first.cache_hit
    assert second.cache_hit and second.total_cost == 0.0 and first.content == second.content
    assert len(openai_server.requests) == len(first.tiers)  # the repeat reached no host
    snapshot = agent.get_analytics()
    assert snapshot.cache_hits == 1 and snapshot.cache_savings_decimal == first.total_cost_decimal


async def test_built_in_analytics(capsys):
    agent = CascadeAgent(models=[drafter, verifier])

    # Process queries
    for query in queries:
        result = await agent.run(query)

    # Get analytics
    analytics = agent.get_analytics()

    print(f"Total queries: {analytics.total_queries}")
    print(f"Total cost: ${analytics.total_cost:.4f}")
    print(f"Avg cost per query: ${analytics.avg_cost_per_query:.6f}")
    print(f"Drafter acceptance: {analytics.drafter_acceptance_rate:.1%}")
    print(f"Cost savings vs baseline: {analytics.cost_savings_pct:.1%}")
    out = capsys.readouterr().out
    assert "Total queries: 3" in out and result.total_cost > 0
    assert f"Total cost: ${analytics.total_cost:.4f}" in out


class QueryBatch:
    def __init__(self, query: str, user_id: str):
        self.query, self.user_id = query, user_id


async def test_per_user_cost_tracking(capsys):
    agent = CascadeAgent(models=[drafter, verifier])
    query_batches = [QueryBatch(q, u) for q, u in zip(queries, ["alice", "bob", "alice"], strict=True)]
    # Track costs by user
    user_costs = {}

    for query_batch in query_batches:
        result = await agent.run(query_batch.query, user_id=query_batch.user_id)

        if query_batch.user_id not in user_costs:
            user_costs[query_batch.user_id] = 0
        user_costs[query_batch.user_id] += result.total_cost

    # Analyze top spenders
    top_users = sorted(user_costs.items(), key=lambda x: x[1], reverse=True)[:10]
    for user_id, cost in top_users:
        print(f"User {user_id}: ${cost:.2f}")
    assert [u for u, _ in top_users] == ["alice", "bob"] and all(isinstance(c, float) for _, c in top_users)
    assert capsys.readouterr().out.startswith("User alice: $")


async def test_cost_anomaly_detection():
    from cascadeflow import AnomalyDetector

    alerts = []
    detector = AnomalyDetector(
        window_size=100,        # Rolling 100 queries
        std_threshold=3.0,      # 3 standard deviations
        on_anomaly=lambda: alerts.append("ops")
    )
    agent = CascadeAgent(models=[drafter, verifier], anomaly_detector=detector)
    await agent.run(queries[0])


async def test_daily_budget_limits():
    switched = []

    def switch_to_cheap_only_mode():
        switched.append(True)

    budget_config = BudgetConfig(
        daily_limit=50.0,      # $50 per day
        on_limit_exceeded=lambda: switch_to_cheap_only_mode(),
        grace_period=0.1       # 10% grace before hard stop
    )

    agent = CascadeAgent(
        models=[drafter, verifier],
        budget_config=budget_config
    )
    result = await agent.run(queries[0])
    assert result.total_cost > 0 and switched == []  # far from the limit: nothing fires


async def test_per_user_budgets():
    user_budgets = {
        "user-123": UserBudget(daily=5.0, monthly=100.0),
        "user-456": UserBudget(daily=10.0, monthly=200.0)
    }

    def enforce_budget(user_id, cost):
        budget = user_budgets[user_id]
        budget.spend(cost)

        if budget.daily_remaining < 0:
            raise BudgetExceededError(f"Daily budget exceeded for {user_id}")

    agent = CascadeAgent(
        models=[drafter, verifier],
        on_query_complete=lambda result: enforce_budget(result.user_id, result.total_cost)
    )
    result = await agent.run(queries[0], user_id="user-123")
    assert user_budgets["user-123"].daily_remaining == pytest.approx(5.0 - result.total_cost)
    user_budgets["user-456"] = UserBudget(daily=0.000001, monthly=200.0)  # a user already at the limit
    with pytest.raises(BudgetExceededError, match="user-456"):
        await agent.run(queries[0], user_id="user-456")


def calculate_roi(baseline_model, cascade_agent, num_queries, avg_tokens):
    # Baseline cost
    baseline_cost_per_1m = 0.00625  # GPT-4o
    baseline_daily = (num_queries * avg_tokens / 1_000_000) * baseline_cost_per_1m
    baseline_monthly = baseline_daily * 30

    # Cascade cost (measured)
    cascade_metrics = cascade_agent.get_analytics()
    cascade_daily = cascade_metrics.total_cost
    cascade_monthly = cascade_daily * 30

    # Savings
    monthly_savings = baseline_monthly - cascade_monthly
    annual_savings = monthly_savings * 12
    savings_pct = (monthly_savings / baseline_monthly) * 100

    return {
        "baseline_monthly": baseline_monthly,
        "cascade_monthly": cascade_monthly,
        "monthly_savings": monthly_savings,
        "annual_savings": annual_savings,
        "savings_percentage": savings_pct
    }


async def test_roi_calculation(capsys):
    agent = CascadeAgent(models=[drafter, verifier])
    for query in queries:
        await agent.run(query)
    roi = calculate_roi("gpt-4o", agent, num_queries=10000, avg_tokens=500)
    print(f"Annual savings: ${roi['annual_savings']:,.2f} ({roi['savings_percentage']:.1f}%)")
    assert capsys.readouterr().out.startswith("Annual savings: $")
    assert roi["cascade_monthly"] == pytest.approx(agent.get_analytics().total_cost * 30)


def self_hosting_break_even(monthly_queries, avg_tokens):
    # Cloud drafter cost
    cloud_drafter_monthly = (
        monthly_queries * 0.7 * avg_tokens / 1_000_000 * 0.00015
    )

    # Self-hosting costs
    gpu_instance_monthly = 200  # e.g., A10G on AWS
    electricity_monthly = 50
    maintenance_monthly = 100
    self_hosting_monthly = gpu_instance_monthly + electricity_monthly + maintenance_monthly

    break_even_queries = (
        self_hosting_monthly /
        (0.7 * avg_tokens / 1_000_000 * 0.00015)
    )

    if monthly_queries > break_even_queries:
        savings = cloud_drafter_monthly - self_hosting_monthly
        return {"decision": "self_host", "monthly_savings": savings}
    else:
        return {"decision": "cloud", "queries_needed": break_even_queries}


def test_break_even_analysis_for_self_hosting(capsys):
    analysis = self_hosting_break_even(monthly_queries=5_000_000, avg_tokens=500)
    print(analysis)
    assert analysis["decision"] == "cloud" and analysis["queries_needed"] > 5_000_000
    assert "queries_needed" in capsys.readouterr().out


def test_predict_future_costs(monkeypatch):
    from cascadeflow import CostForecaster
    from cascadeflow.runtime import pipeline

    agent = CascadeAgent(models=[drafter, verifier])
    forecaster = CostForecaster()

    # Historical data: 30 days of queries (the clock the audit records are stamped with moves a day at a time)
    first_day = date(2026, 11, 1)
    for day in range(30):
        stamp = f"{first_day + timedelta(days=day)}T12:00:00.000Z"
        monkeypatch.setattr(pipeline, "now_iso", lambda stamp=stamp: stamp)
        agent.run_queries(queries)

    # Forecast next 30 days
    forecast = forecaster.predict(
        historical_data=agent.get_analytics(),
        days_ahead=30,
        growth_rate=1.2  # Expect 20% growth
    )

    print(f"Forecasted cost: ${forecast.predicted_cost:.2f}")
    print(f"Upper bound (95%): ${forecast.upper_bound:.2f}")
    print(f"Lower bound (5%): ${forecast.lower_bound:.2f}")
    history = agent.get_analytics().daily_costs
    assert len(history) == 30 and sum(history.values()) == pytest.approx(agent.get_analytics().total_cost)
    assert forecast.lower_bound <= forecast.predicted_cost <= forecast.upper_bound
    # every day cost the same: the forecast is that day's cost grown by 20% a month from the last day on
    daily = history[max(history)]
    assert forecast.predicted_cost == pytest.approx(sum(daily * 1.2 ** (h / 30) for h in range(1, 31)))


def test_seasonal_adjustment():
    holiday = [True]

    def is_holiday_season():
        return holiday[0]

    # Adjust routing for expected traffic patterns
    def get_cascade_for_season():
        if is_holiday_season():
            # Higher traffic → more aggressive cost control
            return CascadeAgent(
                models=[drafter, verifier],
                quality_config=QualityConfig(threshold=0.6)  # Lower threshold
            )
        else:
            # Normal traffic → balanced
            return CascadeAgent(
                models=[drafter, verifier],
                quality_config=QualityConfig(threshold=0.7)
            )

    assert get_cascade_for_season().quality_config.threshold == 0.6
    holiday[0] = False
    assert get_cascade_for_season().quality_config.threshold == 0.7


async def test_pattern_1_local_and_cloud_hybrid(hosts):
    openai_server, _ = hosts
    # Ollama local + OpenAI cloud
    agent = CascadeAgent(models=[
        ModelConfig(name="llama3.2:3b", provider="ollama", cost=0.0),
        ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)
    ])
    result = await agent.run(queries[1])
    assert openai_server.requests[0].json["model"] == "llama3.2:3b" and result.tiers[0].cost == 0.0


async def test_pattern_2_multi_tier_progressive(hosts):
    openai_server, _ = hosts
    openai_server.default = None
    openai_server.enqueue(text="The weather in Tokyo is sunny today.")  # tier 1's draft is off-topic
    openai_server.default = Reply(text=ANSWER, usage={"input": 60, "output": 30})
    agent = CascadeAgent(models=[
        ModelConfig(name="groq-llama", provider="groq", cost=0.00005),      # Tier 1: 60%
        ModelConfig(name="gpt-4o-mini", provider="openai", cost=0.00015),   # Tier 2: 25%
        ModelConfig(name="gpt-4o", provider="openai", cost=0.00625)         # Tier 3: 15%
    ])
    result = await agent.run(queries[0])
    assert [t.model for t in result.tiers][:2] == ["groq/groq-llama", "openai/gpt-4o-mini"]
    assert result.model_used == "openai/gpt-4o-mini"


async def test_query_level_attribution(capsys):
    agent = CascadeAgent(models=[drafter, verifier])
    query_types = ["qa", "summarization", "qa"]
    # Track cost per query type
    query_costs = {"qa": [], "summarization": [], "translation": []}

    for query, query_type in zip(queries, query_types):
        result = await agent.run(query)
        query_costs[query_type].append(result.total_cost)

    # Analyze by type
    for qtype, costs in query_costs.items():
        if costs:  # the guide divides by len(costs); a type without queries has no average
            avg_cost = sum(costs) / len(costs)
            print(f"{qtype}: ${avg_cost:.6f} avg")
    out = capsys.readouterr().out
    assert "qa: $" in out and "summarization: $" in out


async def test_feature_level_attribution(capsys):
    agent = CascadeAgent(models=[drafter, verifier])
    # Track cost per application feature
    feature_costs = {}

    async def feature_query(feature_name, query):
        result = await agent.run(query)

        if feature_name not in feature_costs:
            feature_costs[feature_name] = []
        feature_costs[feature_name].append(result.total_cost)

        return result

    # Use in application
    await feature_query("chat", "Hello, how are you?")
    await feature_query("search", "Find documents about AI")
    await feature_query("summarize", "Summarize this article")

    # Report by feature
    for feature, costs in feature_costs.items():
        total = sum(costs)
        print(f"{feature}: ${total:.4f} ({len(costs)} queries)")
    assert capsys.readouterr().out.count("(1 queries)") == 3


async def test_dashboard_metrics():
    from cascadeflow import MetricsCollector

    _wait_for_free_port(9090)  # the guide's fixed port: another test process may hold it for a moment
    collector = MetricsCollector(
        export_interval=60,  # Export every 60s
        prometheus_port=9090
    )
    try:
        agent = CascadeAgent(models=[drafter, verifier], metrics_collector=collector)
        await agent.run(queries[0])
    finally:
        collector.close()  # frees the port for the next process that runs this guide


def _wait_for_free_port(port: int, *, attempts: int = 120) -> None:
    import socket
    import time

    for _ in range(attempts):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
                return
            except OSError:
                time.sleep(0.5)


def test_alerting_rules():
    from cascadeflow import AlertConfig

    fired = []
    alert_config = AlertConfig(
        rules=[
            {"metric": "hourly_cost", "threshold": 10.0, "condition": "greater_than",
             "action": lambda: fired.append("Cost spike detected!")},
            {"metric": "avg_quality", "threshold": 0.85, "condition": "less_than",
             "action": lambda: fired.append("Quality degradation alert")},
            {"metric": "verifier_usage_pct", "threshold": 0.5, "condition": "greater_than",
             "action": lambda: fired.append("investigate drafter")},
        ]
    )
    CascadeAgent(models=[drafter, verifier], alert_config=alert_config)


def test_pitfall_1_a_drafter_without_a_provider_is_named_or_refused():
    # Bad: Drafter too weak (acceptance < 40%): a name no provider can be inferred from is refused, saying how
    with pytest.raises(ConfigurationError, match="tinyllama-1.1b.*provider"):
        CascadeAgent(models=[
            ModelConfig(name="tinyllama-1.1b", cost=0.0),  # Too weak
            ModelConfig(name="gpt-4o", cost=0.00625)
        ])

    # Good: Appropriately powerful drafter
    agent = CascadeAgent(models=[
        ModelConfig(name="gpt-4o-mini", cost=0.00015),  # Right size
        ModelConfig(name="gpt-4o", cost=0.00625)
    ])
    assert [m.id for m in agent.models] == ["openai/gpt-4o-mini", "openai/gpt-4o"]


def test_pitfall_2_threshold_too_high():
    # Bad: Threshold 0.9 (drafter rarely accepted)
    quality_config = QualityConfig(threshold=0.9)
    assert quality_config.threshold == quality_config.confidence_threshold == 0.9

    # Good: Threshold 0.7 (balanced)
    quality_config = QualityConfig(threshold=0.7)
    assert quality_config.threshold == 0.7


async def test_pitfall_3_not_using_domain_routing(hosts):
    openai_server, _ = hosts
    generic_drafter, generic_verifier = drafter, verifier
    code_specialist = ModelConfig(name="deepseek-coder", provider="ollama", cost=0.0)
    # Bad: Generic cascade for specialized domains
    agent = CascadeAgent(models=[generic_drafter, generic_verifier])

    # Good: Domain-specific cascade
    domain_config = DomainConfig(
        domains={"CODE": [code_specialist, generic_verifier]}
    )
    agent = CascadeAgent(models=[generic_drafter, generic_verifier], domain_config=domain_config)
    await agent.run(CODE_QUERY)
    assert openai_server.requests[0].json["model"] == "deepseek-coder"


async def test_pitfall_4_ignoring_caching(hosts):
    from cascadeflow import CacheConfig

    openai_server, _ = hosts
    # Bad: No caching for repetitive queries
    agent = CascadeAgent(models=[drafter, verifier])
    await agent.run(queries[1])
    await agent.run(queries[1])
    uncached_requests = len(openai_server.requests)

    # Good: Enable caching
    cache_config = CacheConfig(enabled=True, ttl=3600)
    agent = CascadeAgent(
        models=[drafter, verifier],
        cache_config=cache_config
    )
    first, second = await agent.run(queries[1]), await agent.run(queries[1])
    assert second.cache_hit and second.total_cost == 0.0
    assert len(openai_server.requests) - uncached_requests == len(first.tiers)  # FAQ repeats hit no model


def format_top_queries(expensive_queries) -> str:
    return "\n    ".join(f"${cost:.6f}  {request_id}" for cost, request_id in expensive_queries)


def generate_recommendations(analytics):
    recs = []

    if analytics.drafter_acceptance < 0.6:
        recs.append("⚠️ Low drafter acceptance. Consider lowering quality threshold or using stronger drafter.")

    if analytics.verifier_usage > 0.4:
        recs.append("⚠️ High verifier usage. Investigate query complexity or drafter quality.")

    if analytics.avg_quality < 0.9:
        recs.append("⚠️ Quality below target. Raise threshold or improve drafter.")

    if analytics.total_cost > analytics.budget * 0.9:
        recs.append("⚠️ Approaching budget limit. Review high-cost queries.")

    if not recs:
        recs.append("✅ All metrics healthy. No action needed.")

    return "\n".join(recs)


def generate_monthly_report(agent):
    analytics = agent.get_analytics()

    report = f"""
    === CascadeFlow Monthly Cost Report ===

    Total Queries: {analytics.total_queries:,}
    Total Cost: ${analytics.total_cost:.2f}
    Avg Cost/Query: ${analytics.avg_cost_per_query:.6f}

    Model Usage:
    - Drafter: {analytics.drafter_usage:.1%}
    - Verifier: {analytics.verifier_usage:.1%}

    Baseline Cost (GPT-4o): ${analytics.baseline_cost:.2f}
    Savings: ${analytics.total_savings:.2f} ({analytics.savings_pct:.1%})

    Top Cost Queries:
    {format_top_queries(analytics.expensive_queries)}

    Recommendations:
    {generate_recommendations(analytics)}
    """

    return report


async def test_monthly_cost_report_and_its_recommendations():
    sent = []

    def send_email(to, subject, body):
        sent.append((to, subject, body))

    agent = CascadeAgent(models=[drafter, verifier], budget_config=BudgetConfig(monthly_limit=20.0, daily_limit=1.0))
    for query in queries:
        await agent.run(query)

    # Email monthly report to team
    send_email(to="team@company.com", subject="CascadeFlow Monthly Report", body=generate_monthly_report(agent))
    [(_, _, body)] = sent
    analytics = agent.get_analytics()
    assert "Total Queries: 3" in body and f"${analytics.expensive_queries[0][0]:.6f}" in body
    assert analytics.budget == 20.0 and "Approaching budget limit" not in body  # the monthly limit is read
    assert ("Low drafter acceptance" in body) == (analytics.drafter_acceptance < 0.6)


async def test_recommendations_without_a_budget_read_it_as_unlimited():
    agent = CascadeAgent(models=[drafter, verifier])
    await agent.run(queries[0])
    recs = generate_recommendations(agent.get_analytics())
    assert "Approaching budget limit" not in recs and agent.get_analytics().avg_quality is not None
