"""Package attributes imported on first use: where each name comes from, kept once imported, and a missing
optional dependency named as the extra to install."""

from __future__ import annotations

import sys

import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.lazy import lazy_attribute


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "home.py").write_text("def answer():\n    return 42\n\ndef generate():\n    return 'made'\n")
    (root / "broken.py").write_text("import a_dependency_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg

    yield lazypkg
    for name in [n for n in sys.modules if n == "lazypkg" or n.startswith("lazypkg.")]:
        del sys.modules[name]


def test_a_name_is_imported_from_its_home_and_kept_in_the_package(package):
    homes = {"answer": "home", "generate_made": "home", "JSONDecoder": "json.decoder"}
    assert "answer" not in vars(package) and "lazypkg.home" not in sys.modules
    assert lazy_attribute("lazypkg", homes, "answer")() == 42
    assert vars(package)["answer"]() == 42  # the next access does not come back here
    assert lazy_attribute("lazypkg", homes, "generate_made", renamed={"generate_made": "generate"})() == "made"
    import json.decoder

    assert lazy_attribute("lazypkg", homes, "JSONDecoder") is json.decoder.JSONDecoder  # a dotted path: as written


def test_an_unknown_name_is_an_attribute_error(package):
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'nothing'"):
        lazy_attribute("lazypkg", {}, "nothing")


def test_a_missing_dependency_names_the_extra_or_stays_an_import_error(package):
    with pytest.raises(ConfigurationError, match=r'needs the web extra \(a_dependency_nobody_installed is missing\)'):
        lazy_attribute("lazypkg", {"thing": "broken"}, "thing", needs_extra="web")
    with pytest.raises(ImportError):
        lazy_attribute("lazypkg", {"thing": "broken"}, "thing")
