"""Read-only SRE tools, each declared with a name, a description and typed parameters, over a recorded
backend (scenario evidence) or a live one (Kubernetes API, Prometheus, Loki)."""

from .base import (
           EvidenceMissing,
           Param,
           SourceUnavailable,
           Tool,
           Toolbox,
           ToolDeclaration,
           ToolLimits,
           ToolResult,
)
from .live import LiveConfig, LiveSources
from .recorded import RecordedEvidence
from .sources import ALL_TOOLS, SUFFIXES, Sources, live_toolbox, recorded_toolbox

__all__ = ["ALL_TOOLS", "SUFFIXES", "EvidenceMissing", "LiveConfig", "LiveSources", "Param", "RecordedEvidence",
           "SourceUnavailable", "Sources", "Tool",
           "ToolDeclaration", "ToolLimits", "ToolResult", "Toolbox", "live_toolbox", "recorded_toolbox"]
