"""A recorded incident on disk: `alert.json`, evidence files (`<kind>.json`), `scenario.yml` (optional
`base` scenario whose evidence it inherits, optional `available_evidence`) and the grader's `answer.yml`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cascadeflow import InvalidRequestError

from .alerts import Alert, parse_payload

_NOT_EVIDENCE = {"alert.json"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One incident as recorded: the alert, the evidence by kind, and the expected answer when graded."""

    scenario_id: str
    path: Path
    alert: Alert
    evidence: Mapping[str, Any] = field(default_factory=dict)
    answer: Mapping[str, Any] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidRequestError(f"{path}: not valid YAML ({exc})") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise InvalidRequestError(f"{path}: expected a mapping at the top level")
    return loaded or {}


def own_evidence(folder: Path) -> dict[str, Any]:
    return {p.stem: _read_json(p) for p in sorted(folder.glob("*.json")) if p.name not in _NOT_EVIDENCE}


def _evidence(folder: Path, meta: Mapping[str, Any], seen: tuple[Path, ...]) -> dict[str, Any]:
    evidence: dict[str, Any] = {}
    base = meta.get("base")
    if base:
        base_dir = (folder.parent / str(base)).resolve()
        if base_dir in seen:
            raise InvalidRequestError(f"{folder}: scenario bases form a cycle through {base_dir.name}")
        if not base_dir.is_dir():
            raise InvalidRequestError(f"{folder}/scenario.yml: base {base!r} is not a sibling folder")
        evidence = _evidence(base_dir, _read_yaml(base_dir / "scenario.yml"), (*seen, base_dir))
    evidence.update(own_evidence(folder))
    listed = meta.get("available_evidence")
    if isinstance(listed, list) and listed:  # an explicit list narrows what the base lends
        own = set(own_evidence(folder))
        evidence = {k: v for k, v in evidence.items() if k in listed or k in own}
    return evidence


def load_scenario(folder: str | Path) -> Scenario:
    """Load one scenario folder; bad files raise InvalidRequestError naming the file."""
    folder = Path(folder).resolve()
    alert_file = folder / "alert.json"
    if not alert_file.is_file():
        raise InvalidRequestError(f"{folder} is not a scenario: it has no alert.json")
    alerts = parse_payload(_read_json(alert_file))
    meta = _read_yaml(folder / "scenario.yml")
    answer = _read_yaml(folder / "answer.yml") or None
    return Scenario(scenario_id=str(meta.get("scenario_id") or folder.name), path=folder, alert=alerts[0],
                    evidence=_evidence(folder, meta, (folder,)), answer=answer, meta=meta)


def find_scenarios(root: str | Path) -> list[Path]:
    """Every scenario folder under `root` (itself included), sorted by path."""
    root = Path(root)
    if not root.exists():
        raise InvalidRequestError(f"{root} does not exist")
    return sorted(p.parent for p in root.rglob("alert.json"))
