"""Insights over the audit records: streaming anomaly detection (`AnomalyDetector`), the scorers it uses,
cost forecasts (`CostForecaster`), alert rules (`AlertConfig`),
the NAB scoring rules and event scores to measure detectors, and a generator of labelled LLM cost series.
"""

from __future__ import annotations

from typing import Any

from cascadeflow.lazy import lazy_attribute

_HOME = {
    "AgreementScorer": "agreement",
    "Alert": "alerts",
    "AlertConfig": "alerts",
    "AlertRule": "alerts",
    "Anomaly": "anomaly",
    "AnomalyDetector": "anomaly",
    "CooldownScorer": "scorers",
    "CostForecaster": "forecast",
    "CostSeries": "series",
    "Forecast": "forecast",
    "EventScore": "evaluation",
    "NoveltyScorer": "novelty",
    "RobustScorer": "scorers",
    "ZScoreScorer": "scorers",
    "generate_cost_series": "series",
    "score_alerts": "evaluation",
}
_RENAMED = {"generate_cost_series": "generate"}

__all__ = ["AgreementScorer", "Alert", "AlertConfig", "AlertRule", "Anomaly", "AnomalyDetector", "CooldownScorer", "CostForecaster",
           "CostSeries", "EventScore", "Forecast", "NoveltyScorer", "RobustScorer", "ZScoreScorer",
           "generate_cost_series", "score_alerts"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _HOME, name, renamed=_RENAMED)


def __dir__() -> list[str]:
    return __all__
