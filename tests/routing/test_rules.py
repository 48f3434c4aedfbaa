import pytest

from cascadeflow.errors import ConfigurationError
from cascadeflow.messages import build_request
from cascadeflow.models import ModelConfig
from cascadeflow.routing import DEFAULT_SEVERITY_MAP, Rule, RuleRouter, SeverityRouter


def req(**meta):
    return build_request("disk at 61%", metadata=meta)


def test_default_severity_map_routes_p0_to_the_capable_model_with_a_reason():
    route = SeverityRouter().route(req(severity="P0"))
    assert route.model.id == "groq/llama3-70b-8192"
    assert route.reason == "severity=P0"
    assert route.kind == "severity" and route.label == "P0"


def test_severity_is_matched_case_insensitively():
    assert SeverityRouter().route(req(severity="info")).model.id == DEFAULT_SEVERITY_MAP["INFO"]


def test_unknown_or_missing_severity_goes_to_the_default_and_says_so():
    router = SeverityRouter()
    unknown = router.route(req(severity="SEV9"))
    assert unknown.model.id == "groq/llama3-8b-8192"
    assert "SEV9 not in map" in unknown.reason
    missing = router.route(req())
    assert missing.reason == "no severity; default"


def test_severity_without_default_raises_naming_known_levels():
    router = SeverityRouter({"P0": "groq/llama3-70b-8192"}, default=None)
    with pytest.raises(ConfigurationError, match="P0"):
        router.route(req(severity="P3"))


def test_severity_target_may_be_a_cascade():
    router = SeverityRouter({"P1": ["groq/llama3-8b-8192", "groq/llama3-70b-8192"]})
    route = router.route(req(severity="P1"))
    assert route.is_cascade
    assert route.target == "groq/llama3-8b-8192 -> groq/llama3-70b-8192"


def test_severity_map_rejects_unresolvable_model_names():
    with pytest.raises(ConfigurationError, match="provider"):
        SeverityRouter({"P0": "mystery-model"})


def test_rule_router_first_match_wins_on_metadata_dict_and_callable():
    strong = ModelConfig("gpt-4o", provider="openai")
    rules = [
        Rule("payments", {"service": ["payments", "billing"]}, strong, reason="money path"),
        Rule("big", lambda meta: meta.get("hosts", 0) > 10, "groq/llama3-70b-8192"),
    ]
    router = RuleRouter(rules, default="groq/gemma2-9b-it")
    hit = router.route(req(service="billing", hosts=50))
    assert hit.model is strong and hit.reason == "money path" and hit.label == "payments"
    second = router.route(req(service="search", hosts=50))
    assert second.model.id == "groq/llama3-70b-8192" and second.reason == "<lambda>"
    fallback = router.route(req(service="search"))
    assert fallback.model.id == "groq/gemma2-9b-it" and "default" in fallback.reason


def test_rule_router_without_default_has_no_opinion():
    router = RuleRouter([Rule("x", {"team": "sre"}, "groq/llama3-8b-8192")])
    assert router.route(req(team="web")) is None


def test_rule_names_must_be_unique_and_broken_predicates_are_named():
    with pytest.raises(ConfigurationError, match="unique"):
        RuleRouter([Rule("a", {"x": 1}, "groq/llama3-8b-8192"), Rule("a", {"x": 2}, "groq/llama3-8b-8192")])
    router = RuleRouter([Rule("boom", lambda meta: meta["missing"], "groq/llama3-8b-8192")])
    with pytest.raises(ConfigurationError, match="boom"):
        router.route(req())


def test_empty_cascade_target_is_rejected():
    with pytest.raises(ConfigurationError, match="empty"):
        Rule("x", {"a": 1}, []).compile()


def test_route_describes_its_target():
    route = SeverityRouter({"P1": ["groq/llama-3.1-8b-instant", "openai/gpt-4o"]}).route(req(severity="P1"))
    assert str(route) == "groq/llama-3.1-8b-instant -> openai/gpt-4o (severity=P1)"
    assert route.model.id == "groq/llama-3.1-8b-instant"


def test_a_custom_metadata_key_can_carry_the_severity():
    router = SeverityRouter({"SEV1": "groq/llama3-70b-8192"}, key="priority", default="groq/gemma2-9b-it")
    assert router.route(req(priority="sev1")).reason == "priority=SEV1"
    assert router.model_for(None)[0].id == "groq/gemma2-9b-it"


@pytest.mark.parametrize("target", [42, b"groq/x", {"model": "gpt-4o"}])
def test_targets_of_the_wrong_type_are_explained(target):
    from cascadeflow.routing import as_tiers

    with pytest.raises(ConfigurationError, match="model id"):
        as_tiers(target)


def test_an_empty_severity_map_is_rejected():
    with pytest.raises(ConfigurationError, match="non-empty"):
        SeverityRouter({})


def test_a_rule_with_an_empty_when_is_rejected():
    with pytest.raises(ConfigurationError, match="when"):
        RuleRouter([Rule("x", {}, "groq/llama3-8b-8192")])


def test_routers_satisfy_the_router_protocol():
    from cascadeflow.routing import DomainConfig, ModelRouter, Router

    for router in (SeverityRouter(), RuleRouter([Rule("a", {"x": 1}, "gpt-4o")]), ModelRouter(),
                   DomainConfig(domains={"DEFAULT": ["gpt-4o"]})):
        assert isinstance(router, Router)
