"""One investigation as the pages show it, computed from its events alone (live or read back from
`events.jsonl`): each event as a stream line, the cost panel, and the analysis with its evidence links.

The stream, the static page and the snapshot all use these functions, so a line reads the same in each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SEVERITY_TONES = {"P0": "p0", "P1": "p1", "P2": "p2", "P3": "p3", "INFO": "info"}


def _money(value: Any) -> str:
    return f"${float(value or 0.0):.6f}"


def describe(event: Mapping[str, Any]) -> dict[str, Any]:
    """The stream line of one event: its tag, plain text (escaped where it is shown), a tone for colour,
    and the anchor evidence links point at."""
    kind = str(event.get("type", "event"))
    text, tone = _TEXT.get(kind, _generic)(event)
    return {"seq": int(event.get("seq", 0)), "type": kind, "tag": kind.upper(), "text": text, "tone": tone,
            "anchor": anchor(event), "at": event.get("at")}


def anchor(event: Mapping[str, Any]) -> str:
    """The element id of an event's stream line, unique across investigations (the snapshot holds many)."""
    return f"ev-{event.get('investigation_id')}-{event.get('seq', 0)}"


def _started(e: Mapping[str, Any]) -> tuple[str, str]:
    alert = e.get("alert") or {}
    return ((f"{alert.get('severity', '?')} {alert.get('status', '')} alert {alert.get('name', '?')} on "
            f"{alert.get('service', '?')}: {alert.get('title', '')}"), "start")


def _classified(e: Mapping[str, Any]) -> tuple[str, str]:
    return f"{e.get('task')}: {e.get('reason')}", "plain"


def _memory(e: Mapping[str, Any]) -> tuple[str, str]:
    return ((f"recalled {e.get('incident_id')} (score {float(e.get('score') or 0):.2f}, "
            f"{float(e.get('age_days') or 0):.0f} days old): {e.get('summary')}"), "memory")


def _runbook(e: Mapping[str, Any]) -> tuple[str, str]:
    return f"runbook {e.get('runbook')}: {e.get('title')} (matched by {e.get('matched_by')})", "memory"


def _plan(e: Mapping[str, Any]) -> tuple[str, str]:
    return f"round {e.get('loop')}: {', '.join(e.get('tools') or [])} ({e.get('reason')})", "plain"


def _called(e: Mapping[str, Any]) -> tuple[str, str]:
    args = ", ".join(f"{k}={v}" for k, v in (e.get("arguments") or {}).items())
    return f"{e.get('tool')}({args[:160]})", "tool"


def _returned(e: Mapping[str, Any]) -> tuple[str, str]:
    if e.get("error"):
        return f"{e.get('tool')} failed: {e.get('error')}", "warn"
    cut = ", cut to budget" if e.get("truncated") else ""
    return ((f"{e.get('tool')} read {e.get('evidence_kind') or 'no evidence'}: {e.get('chars')} chars in "
            f"{float(e.get('elapsed_ms') or 0):.0f} ms{cut}"), "tool")


def _finding(e: Mapping[str, Any]) -> tuple[str, str]:
    state = "ACTIVE" if e.get("active") else "recovered"
    return f"{state} {e.get('check')} {e.get('subject')}: {e.get('statement')}", "danger" if e.get("active") else "plain"


def _selection(e: Mapping[str, Any]) -> tuple[str, str]:
    return f"{e.get('task_type')} -> {e.get('model')} ({e.get('tier')} tier): {e.get('reason')}", "model"


def _answered(e: Mapping[str, Any]) -> tuple[str, str]:
    return ((f"{e.get('model')} answered {e.get('task_type')} in {float(e.get('latency_ms') or 0):.0f} ms for "
            f"{_money(e.get('cost_usd'))}"), "model")


def _checked(e: Mapping[str, Any]) -> tuple[str, str]:
    verdict = "valid" if e.get("ok") else "rejected: " + "; ".join(e.get("problems") or [])
    return f"{e.get('author')} said {e.get('category')}, {verdict} -> {e.get('action')}", \
        "plain" if e.get("ok") else "warn"


def _cost(e: Mapping[str, Any]) -> tuple[str, str]:
    return ((f"spent {_money(e.get('total_usd'))} of {_money(e.get('budget_usd'))}; all-premium would have cost "
            f"{_money(e.get('all_premium_usd'))}"), "plain")


def _finished(e: Mapping[str, Any]) -> tuple[str, str]:
    stop = f", stopped by {e.get('stopped_by')}" if e.get("stopped_by") else ""
    return ((f"{e.get('category')} after {e.get('loops')} round(s), {len(e.get('tool_calls') or [])} tool calls, "
            f"{_money(e.get('cost_usd'))}{stop}"), "done")


def _generic(e: Mapping[str, Any]) -> tuple[str, str]:
    skip = {"type", "investigation_id", "seq", "at"}
    return ", ".join(f"{k}={v}" for k, v in e.items() if k not in skip), "plain"


_TEXT = {"investigation_started": _started, "task_classified": _classified, "memory_hit": _memory,
         "runbook_hit": _runbook, "plan_made": _plan, "tool_called": _called, "tool_returned": _returned,
         "finding": _finding, "model_selection": _selection, "model_answered": _answered,
         "diagnosis_checked": _checked, "cost": _cost, "investigation_finished": _finished}


def cost_panel(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Cost per task type and per model, calls per tier, and what all-premium would have cost: the final
    `cost` event once there is one, the running sum of the answered calls before that."""
    panel: dict[str, Any] = {"total_usd": 0.0, "by_task": {}, "by_model": {}, "calls_by_tier": {},
                             "all_premium_usd": None, "budget_usd": None, "final": False}
    for e in events:
        if e.get("type") == "model_answered":
            cost, task, model = float(e.get("cost_usd") or 0.0), str(e.get("task_type")), str(e.get("model"))
            panel["total_usd"] += cost
            panel["by_task"][task] = panel["by_task"].get(task, 0.0) + cost
            panel["by_model"][model] = panel["by_model"].get(model, 0.0) + cost
            tier = str(e.get("tier"))
            panel["calls_by_tier"][tier] = panel["calls_by_tier"].get(tier, 0) + 1
        elif e.get("type") == "cost":
            panel.update(total_usd=float(e.get("total_usd") or 0.0), by_task=dict(e.get("by_task") or {}),
                         by_model=dict(e.get("by_model") or {}), calls_by_tier=dict(e.get("calls_by_tier") or {}),
                         all_premium_usd=float(e.get("all_premium_usd") or 0.0), budget_usd=e.get("budget_usd"),
                         final=True)
    return panel


def panel_rows(panel: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """The panel's tables as (label, formatted value) rows, sorted by label, for pages and the stream."""
    return {"by_task": [(k, _money(v)) for k, v in sorted(panel["by_task"].items())],
            "by_model": [(k, _money(v)) for k, v in sorted(panel["by_model"].items())],
            "calls_by_tier": [(k, str(v)) for k, v in sorted(panel["calls_by_tier"].items())],
            "summary": [("total", _money(panel["total_usd"])),
                        ("all-premium", "-" if panel["all_premium_usd"] is None else _money(panel["all_premium_usd"])),
                        ("budget", "-" if panel["budget_usd"] is None else _money(panel["budget_usd"]))]}


def _evidence_links(cites: Sequence[str], anchors: Mapping[str, str]) -> list[dict[str, str | None]]:
    """`[evidence: kind] quote` strings as links to the stream line of the tool call that read `kind`."""
    links = []
    for cite in cites:
        kind, _, quote = cite.removeprefix("[evidence: ").partition("] ")
        links.append({"kind": kind, "quote": quote, "anchor": anchors.get(kind)})
    return links


def analysis(events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The root cause with its confidence, the actions, and every finding with evidence links; None while
    the investigation runs. Confidence is the share of active findings that support the category, and
    whether a model's answer passed validation (no number is invented)."""
    finished = next((e for e in events if e.get("type") == "investigation_finished"), None)
    if finished is None:
        return None
    anchors: dict[str, str] = {}
    for e in events:
        if e.get("type") == "tool_returned" and e.get("evidence_kind") and not e.get("error"):
            anchors.setdefault(str(e["evidence_kind"]), anchor(e))
    findings = [e for e in events if e.get("type") == "finding"]
    active = [f for f in findings if f.get("active") and f.get("category")]
    category = finished.get("category")
    support = [f for f in active if f.get("category") == category]
    accepted = [e for e in events if e.get("type") == "diagnosis_checked" and e.get("action") == "accepted"]
    answer = str(finished.get("answer") or "")
    return {
        "root_cause": finished.get("root_cause"), "category": category, "stopped_by": finished.get("stopped_by"),
        "confidence": {"supporting": len(support), "active": len(active),
                       "validated_by": accepted[-1].get("author") if accepted else None},
        "remediation": _section(answer, "REMEDIATION:"), "runbooks": _section(answer, "RUNBOOKS:"),
        "tool_calls": list(finished.get("tool_calls") or []),
        "findings": [{"statement": f.get("statement"), "check": f.get("check"), "subject": f.get("subject"),
                      "active": bool(f.get("active")), "anchor": anchor(f),
                      "evidence": _evidence_links(list(f.get("evidence") or []), anchors)} for f in findings],
        "answer": answer,
    }


def _section(answer: str, header: str) -> list[str]:
    lines, inside = [], False
    for line in answer.splitlines():
        if line.strip() == header:
            inside = True
        elif inside and line.startswith("- "):
            lines.append(line[2:])
        elif inside and line.strip():
            break
    return lines


def investigation_view(events: Sequence[Mapping[str, Any]], *, live: bool = False) -> dict[str, Any]:
    ordered = sorted(events, key=lambda e: int(e.get("seq", 0)))
    started = next((e for e in ordered if e.get("type") == "investigation_started"), {})
    alert = dict(started.get("alert") or {})
    panel = cost_panel(ordered)
    done = analysis(ordered)
    return {
        "id": ordered[0].get("investigation_id") if ordered else None, "alert": alert,
        "tone": SEVERITY_TONES.get(str(alert.get("severity")), "info"),
        "lines": [describe(e) for e in ordered], "last_seq": int(ordered[-1].get("seq", 0)) if ordered else 0,
        "cost": panel, "cost_rows": panel_rows(panel), "analysis": done,
        "memory_hits": [e for e in ordered if e.get("type") == "memory_hit"],
        "status": "finished" if done else ("running" if live else "incomplete"),
    }
