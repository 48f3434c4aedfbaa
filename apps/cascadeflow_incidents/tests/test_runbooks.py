"""Runbooks: found by alert name first, by meaning otherwise; bad front matter is a clear error."""

from __future__ import annotations

import pytest

from cascadeflow import InvalidRequestError
from cascadeflow_incidents.runbooks import RunbookIndex


def test_a_runbook_named_for_the_alert_comes_first() -> None:
    matches = RunbookIndex().search("KubeNodeNotReady", "something odd")
    assert matches[0].runbook.name == "node-not-ready" and matches[0].matched_by == "alert name"


def test_an_unknown_alert_finds_its_runbook_by_meaning() -> None:
    matches = RunbookIndex().search("SomeCustomAlert", "admission rejects new pods: exceeded quota in namespace")
    assert matches[0].runbook.name == "quota-exceeded" and matches[0].matched_by == "meaning"


def test_a_folder_of_your_own_runbooks_is_indexed(tmp_path) -> None:
    (tmp_path / "disk.md").write_text("---\ntitle: Disk full\nalerts: [NodeDiskFull]\n---\n# Disk\nfree space\n")
    index = RunbookIndex(tmp_path)
    assert index.by_alert("nodediskfull").title == "Disk full"
    (tmp_path / "bad.md").write_text("---\ntitle: [unclosed\n---\nbody")
    with pytest.raises(InvalidRequestError, match="bad.md: front matter"):
        RunbookIndex(tmp_path)
    with pytest.raises(InvalidRequestError, match="does not exist"):
        RunbookIndex(tmp_path / "nope")


def test_runbooks_named_after_their_alert_need_no_front_matter(tmp_path) -> None:
    (tmp_path / "KubeQuotaAlmostFull.md").write_text("---\ntitle: Kube Quota Almost Full\n---\n# KubeQuotaAlmostFull\n"
                                                     "## Meaning\nthe namespace quota is nearly used up\n")
    (tmp_path / "README.md").write_text("# Runbooks\nindex of the folder")
    index = RunbookIndex(tmp_path)
    assert [r.name for r in index.runbooks] == ["KubeQuotaAlmostFull"]
    assert index.search("KubeQuotaAlmostFull", "x")[0].matched_by == "alert name"
