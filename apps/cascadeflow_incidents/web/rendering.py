"""The one Jinja2 environment (autoescaping every template, so alert text and model output are always
escaped) and the two ways pages link: to the live app's URLs, or to sections of the one-file snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

import jinja2

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class LiveLinks:
    """URLs of the running app."""

    def incidents(self) -> str:
        return "/"

    def investigation(self, investigation_id: str) -> str:
        return f"/investigations/{quote(str(investigation_id), safe='')}"

    def events(self, investigation_id: str) -> str:
        return f"/api/investigations/{quote(str(investigation_id), safe='')}/events"

    def cancel(self, investigation_id: str) -> str:
        return f"/investigations/{quote(str(investigation_id), safe='')}/cancel"

    def start(self) -> str:
        return "/investigations"

    def drain(self) -> str:
        return "/queue/drain"

    def memory(self) -> str:
        return "/memory"

    def budget(self) -> str:
        return "/budget"

    def audit(self, params: Mapping[str, str]) -> str:
        return "/audit" + (f"?{urlencode(params)}" if params else "")

    def export(self, fmt: str, params: Mapping[str, str]) -> str:
        return f"/api/audit.{fmt}" + (f"?{urlencode(params)}" if params else "")

    def static(self, name: str) -> str:
        return f"/static/{name}"


class SnapshotLinks(LiveLinks):
    """In-page anchors of the snapshot; nothing points at a server."""

    def incidents(self) -> str:
        return "#incidents"

    def investigation(self, investigation_id: str) -> str:
        return f"#inv-{investigation_id}"

    def memory(self) -> str:
        return "#memory"

    def budget(self) -> str:
        return "#budget"

    def audit(self, params: Mapping[str, str]) -> str:
        return "#audit"

    def export(self, fmt: str, params: Mapping[str, str]) -> str:
        return "#audit"
