"""The diagnosis: drafted from findings, parsed from a model, validated against the findings."""

from __future__ import annotations

from cascadeflow_incidents.analyzers import Evidence, Finding
from cascadeflow_incidents.diagnosis import category_of, draft, parse_reply, validate

EV = (Evidence("k8s_pods", "pod web-1 ready=False"),)
OOM = Finding(check="oom_killed", subject="Pod/web-1", statement="pod web-1 is OOMKilled",
              category="resource_exhaustion", weight=0.95, active=True, evidence=EV, remediation="raise it")
SYMPTOM = Finding(check="replicas_unavailable", subject="Deployment/web", statement="web has 1/2 ready",
                  category=None, weight=0.3, active=True, evidence=EV)
PAST = Finding(check="restart_recovered", subject="Pod/web-2", statement="web-2 restarted once, Ready now",
               category=None, weight=0.2, active=False, evidence=EV)


def test_category_follows_the_strongest_active_finding_that_names_one() -> None:
    weak = Finding(check="crash_loop", subject="Pod/web-1", statement="crash", category="code_defect",
                   weight=0.5, active=True, evidence=EV)
    assert category_of([weak, OOM]) == "resource_exhaustion"
    assert category_of([PAST]) == "healthy"
    assert category_of([SYMPTOM]) == "unknown"  # something fails and no check names why


def test_the_draft_cites_evidence_for_every_claim_and_renders_the_answer_format() -> None:
    text = draft([OOM, SYMPTOM]).render()
    assert text.startswith("ROOT_CAUSE: pod web-1 is OOMKilled\nROOT_CAUSE_CATEGORY: resource_exhaustion")
    assert '[evidence: k8s_pods] "pod web-1 ready=False"' in text
    for section in ("VALIDATED_CLAIMS:", "CAUSAL_CHAIN:", "REMEDIATION:\n- raise it"):
        assert section in text


def test_a_healthy_draft_says_so_and_lists_what_recovered() -> None:
    d = draft([PAST])
    assert d.category == "healthy" and "No failure is active" in d.root_cause and "restarted once" in d.root_cause


def test_model_replies_are_parsed_leniently() -> None:
    assert parse_reply("ROOT_CAUSE: web-1 OOM\nCATEGORY: Resource Exhaustion.") == ("web-1 OOM",
                                                                                   "resource_exhaustion")
    assert parse_reply("no idea") == (None, None)


def test_validation_rejects_answers_the_findings_contradict() -> None:
    findings = [OOM, SYMPTOM]
    assert validate("pod web-1 is killed for memory", "resource_exhaustion", findings).ok
    assert "says healthy" in validate("all is fine with web-1 now", "healthy", findings).problems[0]
    assert any("matches no active finding" in p for p in
               validate("web-1 has a bug in its code", "code_defect", findings).problems)
    assert any("cites none" in p for p in validate("memory is exhausted somewhere", "resource_exhaustion",
                                                    findings).problems)
    assert any("not one of" in p for p in validate("pod web-1 broke", "gremlins", findings).problems)
    assert any("no finding is active" in p for p in validate("pod web-2 OOM", "resource_exhaustion", [PAST]).problems)
