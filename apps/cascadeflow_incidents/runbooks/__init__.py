"""Runbooks: a folder of markdown files (YAML front matter `title`, `alerts`), found by alert name first
and by meaning otherwise, and cited in the answer. `RunbookIndex()` indexes the runbooks shipped here."""

from __future__ import annotations

import importlib.util

from cascadeflow import ConfigurationError

if importlib.util.find_spec("numpy") is None:  # checked before any submodule imports it
    raise ConfigurationError("the incident agent's memory and runbooks need numpy: "
                             'pip install "cascadeflow[incidents]"')

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from cascadeflow import InvalidRequestError

from ..memory.embedding import Embedder, default_embedder

LIBRARY = Path(__file__).resolve().parent / "library"
_NOT_RUNBOOKS = {"README", "LICENSE", "CHANGELOG", "CONTRIBUTING", "UPSTREAM_README"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Runbook:
    name: str  # file stem
    title: str
    alerts: tuple[str, ...]
    body: str
    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class RunbookMatch:
    runbook: Runbook
    score: float
    matched_by: str  # "alert name" | "meaning"


def _read(path: Path) -> Runbook:
    text = path.read_text()
    meta: dict = {}
    if text.startswith("---"):
        _, head, text = text.split("---", 2)
        try:
            meta = yaml.safe_load(head) or {}
        except yaml.YAMLError as exc:
            raise InvalidRequestError(f"{path}: front matter is not valid YAML ({exc})") from exc
    heading = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), "")
    title = str(meta.get("title") or heading or path.stem)
    # Without an `alerts` list, a runbook named after its alert (KubePodCrashLooping.md) or headed by it
    # covers that alert, as in the prometheus-operator runbooks.
    named = [path.stem] + ([heading] if heading and " " not in heading else [])
    alerts = tuple(str(a) for a in meta.get("alerts") or dict.fromkeys(named))
    return Runbook(name=path.stem, title=title, alerts=alerts, body=text.strip(), path=path)


class RunbookIndex:
    def __init__(self, folder: str | Path = LIBRARY, *, embedder: Embedder | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InvalidRequestError(f"runbook folder {self.folder} does not exist")
        self.runbooks = [_read(p) for p in sorted(self.folder.rglob("*.md"))
                         if not p.name.startswith("_") and p.stem.upper() not in _NOT_RUNBOOKS]
        self.embedder = embedder or default_embedder()
        texts = [f"{r.title}. {' '.join(r.alerts)}. {r.body[:1500]}" for r in self.runbooks]
        self._matrix = self.embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)

    def by_alert(self, alert_name: str) -> Runbook | None:
        wanted = alert_name.lower()
        return next((r for r in self.runbooks if wanted in (a.lower() for a in r.alerts)), None)

    def search(self, alert_name: str | None, text: str, *, k: int = 3) -> list[RunbookMatch]:
        """The runbook named for this alert first (score 1.0), then the closest by meaning."""
        matches: list[RunbookMatch] = []
        exact = self.by_alert(alert_name) if alert_name else None
        if exact is not None:
            matches.append(RunbookMatch(runbook=exact, score=1.0, matched_by="alert name"))
        if self.runbooks and text.strip():
            scores = self._matrix @ self.embedder.embed([text])[0]
            for i in np.argsort(-scores):
                if len(matches) >= k:
                    break
                if exact is None or self.runbooks[i].name != exact.name:
                    matches.append(RunbookMatch(runbook=self.runbooks[i], score=float(scores[i]),
                                                matched_by="meaning"))
        return matches[:k]
