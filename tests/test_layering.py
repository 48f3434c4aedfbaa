"""The packages of cascadeflow form layers: a module imports only from its own package and the layers below
(at module level or inside a function). The known exceptions are listed with their reason; a new upward
import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import cascadeflow

SRC = Path(cascadeflow.__file__).parent

# bottom to top; a package (or top-level module) imports only from its own layer's packages and those below
LAYERS = [
    {"errors", "known_secrets"},
    {"messages", "models", "pricing", "tokens", "sync", "stamps", "embeddings", "lazy"},
    {"trace"},
    {"providers"},
    {"budget"},
    {"routing"},
    {"cache"},
    {"runtime"},
    {"harness"},
    {"metrics"},
    {"cascade"},
    {"flow"},
    {"insights"},
    {"replay", "reports"},
    {"gateway"},
    {"testing"},
    {"cli"},
    {"__init__"},
]

# (importing module, imported package): why the import points upward
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                 [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "cascadeflow" and len(parts) > 1:
                found.add(parts[1])
    return found


def _layer(package: str) -> int:
    for level, members in enumerate(LAYERS):
        if package in members:
            return level
    raise AssertionError(f"package {package!r} is in no layer of tests/test_layering.py: add it where it belongs")


def test_every_import_points_down_the_layers():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        module, source = str(path.relative_to(SRC)), _package(path)
        for target in _imported_packages(path):
            if target != source and _layer(target) > _layer(source) and (module, target) not in KNOWN_UPWARD:
                upward.append(f"{module} imports cascadeflow.{target}")
    assert not upward, upward


def test_the_known_exceptions_still_exist():
    # an exception that no longer happens is removed from the list, so the list only shrinks
    for module, target in KNOWN_UPWARD:
        assert target in _imported_packages(SRC / module), (module, target)
