"""Read-only SRE tools, each declared with a name, a description and typed parameters, over a recorded
backend (scenario evidence) or a live one (Kubernetes API, Prometheus, Loki)."""

from .base import EvidenceMissing, Param, Tool, Toolbox, ToolDeclaration, ToolLimits, ToolResult
from .recorded import RecordedEvidence
from .sources import ALL_TOOLS, SUFFIXES, Sources, recorded_toolbox

__all__ = ["ALL_TOOLS", "SUFFIXES", "EvidenceMissing", "Param", "RecordedEvidence", "Sources", "Tool",
           "ToolDeclaration", "ToolLimits", "ToolResult", "Toolbox", "recorded_toolbox"]
