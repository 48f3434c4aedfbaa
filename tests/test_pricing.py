"""The price book: published per-million prices, dated ids, cache tokens, overrides, unknown models, money."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, localcontext

import genai_prices
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadeflow.errors import ConfigurationError, UnknownModelPriceError
from cascadeflow.messages import Usage, build_request
from cascadeflow.models import ModelConfig
from cascadeflow.pricing import PriceBook, Rates, from_micro_usd, to_micro_usd, usd_to_micro_limit
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.sync import run_sync
from cascadeflow.testing import FakeProvider

D = Decimal

# (model, input $/M, output $/M) as published on the providers' pricing pages:
# openai.com/api/pricing, anthropic.com/pricing (docs.anthropic.com "Pricing"), groq.com/pricing.
PUBLISHED = [
    ("openai/gpt-4o", "2.50", "10"),
    ("openai/gpt-4o-mini", "0.15", "0.60"),
    ("openai/gpt-4o-2024-05-13", "5", "15"),
    ("openai/gpt-4.1", "2", "8"),
    ("openai/gpt-4.1-mini", "0.40", "1.60"),
    ("openai/gpt-4.1-nano", "0.10", "0.40"),
    ("openai/o3-mini", "1.10", "4.40"),
    ("openai/o4-mini", "1.10", "4.40"),
    ("openai/gpt-3.5-turbo", "0.50", "1.50"),
    ("anthropic/claude-3-5-haiku-20241022", "0.80", "4"),
    ("anthropic/claude-3-5-sonnet-20241022", "3", "15"),
    ("anthropic/claude-3-haiku-20240307", "0.25", "1.25"),
    ("anthropic/claude-3-opus-20240229", "15", "75"),
    ("groq/llama-3.1-8b-instant", "0.05", "0.08"),
    ("groq/llama-3.3-70b-versatile", "0.59", "0.79"),
]


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


@pytest.mark.parametrize(("model", "input_price", "output_price"), PUBLISHED)
def test_well_known_models_cost_their_published_price(book: PriceBook, model: str, input_price: str,
                                                      output_price: str) -> None:
    rates = book.rates(model)
    assert (rates.input, rates.output, rates.source) == (D(input_price), D(output_price), "genai-prices")
    # a million tokens each way costs exactly the two published figures added up
    assert book.cost(model, Usage(1_000_000, 1_000_000)) == D(input_price) + D(output_price)


def test_dated_ids_are_priced_as_that_snapshot(book: PriceBook) -> None:
    mini = book.rates("openai/gpt-4o-mini-2024-07-18")
    assert (mini.input, mini.output) == (D("0.15"), D("0.60"))  # not gpt-4o's $2.50/$10
    may = book.rates("openai/gpt-4o-2024-05-13")
    august = book.rates("openai/gpt-4o-2024-08-06")
    assert (may.input, may.output) == (D(5), D(15))
    assert (august.input, august.output) == (D("2.50"), D(10))


def test_anthropic_cache_writes_and_reads_have_their_own_rates(book: PriceBook) -> None:
    # claude-3-5-haiku: input $0.80, 5-minute cache write $1, cache read $0.08, output $4 per million
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=6_000, cache_write_tokens=2_000)
    expected = (2_000 * D("0.80") + 6_000 * D("0.08") + 2_000 * D(1) + 1_000 * D(4)) / 1_000_000
    assert book.cost("anthropic/claude-3-5-haiku-20241022", usage) == expected


def test_openai_cached_input_is_half_price_for_gpt_4o_mini(book: PriceBook) -> None:
    usage = Usage(input_tokens=1_000, output_tokens=10, cache_read_tokens=400)
    expected = (600 * D("0.15") + 400 * D("0.075") + 10 * D("0.60")) / 1_000_000
    assert book.cost("openai/gpt-4o-mini", usage) == expected


def test_context_tiers_price_long_prompts_at_the_higher_rate(book: PriceBook) -> None:
    # claude-sonnet-4-5: $3/$15 up to 200K input tokens, $6/$22.50 above
    model = "anthropic/claude-sonnet-4-5"
    assert book.cost(model, Usage(100_000, 1_000)) == (100_000 * D(3) + 1_000 * D(15)) / 1_000_000
    assert book.cost(model, Usage(300_000, 1_000)) == (300_000 * D(6) + 1_000 * D("22.5")) / 1_000_000
    assert book.worst_case(model, 100_000, 1_000) >= book.cost(model, Usage(100_000, 1_000))


def test_cost_per_1k_override_as_users_write_it(book: PriceBook) -> None:
    cfg = ModelConfig(name="gpt-4o", cost=0.002)  # USD per 1K tokens, input and output alike
    assert book.rates(cfg).source == "config"
    assert book.cost(cfg, Usage(1_000, 500)) == D("0.003")


def test_cost_per_token_and_per_million_overrides(book: PriceBook) -> None:
    per_token = ModelConfig(name="groq/llama3-8b-8192", cost_per_token=0.000001)
    assert book.cost(per_token, Usage(700, 300)) == D("0.001")
    split = ModelConfig(name="openai/gpt-4o-mini", input_price_per_million=1, output_price_per_million=3)
    assert book.cost(split, Usage(1_000_000, 1_000_000)) == D(4)


def test_book_overrides_apply_below_the_model_config() -> None:
    book = PriceBook({"groq/llama3-70b-8192": {"input": 1, "output": 2}})
    assert book.rates("groq/llama3-70b-8192").source == "override"
    assert book.cost("groq/llama3-70b-8192", Usage(1_000_000, 0)) == D(1)
    own = ModelConfig(name="groq/llama3-70b-8192", cost=0.01)
    assert book.rates(own).source == "config"


def test_unknown_model_is_an_error_by_default(book: PriceBook) -> None:
    with pytest.raises(UnknownModelPriceError) as caught:
        book.rates("openai/gpt-nonexistent-9")
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, ConfigurationError)
    assert "openai/gpt-nonexistent-9" in str(caught.value) and "cost=" in str(caught.value)
    with pytest.raises(UnknownModelPriceError):
        book.rates("huggingface/some-org/some-model")  # a provider genai-prices does not cover


def test_configured_ceiling_prices_unknown_models() -> None:
    book = PriceBook(unknown_model_ceiling=(10, 30))
    rates = book.rates("openai/gpt-nonexistent-9")
    assert (rates.input, rates.output, rates.source) == (D(10), D(30), "ceiling")
    assert book.rates("openai/gpt-4o").source == "genai-prices"  # known models keep their real price
    with pytest.raises(ConfigurationError):
        PriceBook(unknown_model_ceiling=(-1, 30))


def test_self_hosted_models_are_free_unless_compute_is_declared(book: PriceBook) -> None:
    assert book.cost("ollama/llama3.1", Usage(5_000, 5_000)) == 0
    cfg = ModelConfig(name="vllm/my-model", compute_cost_per_hour=7.2)
    assert book.cost(cfg, Usage(5_000, 5_000), latency_s=0.5) == D("0.001")


def test_price_data_version_is_recorded_in_audit_records(book: PriceBook) -> None:
    assert book.version == f"genai-prices {genai_prices.__version__}"
    runtime = Runtime(price_book=book, resolve_provider=FakeProvider("fine").resolver())
    call = runtime.new_call()
    response, _ = run_sync(runtime.attempt(ModelConfig(name="openai/gpt-4o-mini"), build_request("hi"), call))
    record = runtime.finish(call, action="allow", model_selected="openai/gpt-4o-mini", response=response)
    assert record.price_version == book.version


def test_costs_are_decimal_and_micro_usd_rounds_up(book: PriceBook) -> None:
    cost = book.cost("groq/llama-3.1-8b-instant", Usage(1, 0))
    assert isinstance(cost, Decimal) and cost == D("0.00000005")
    assert to_micro_usd(cost) == 1  # a reservation never rounds below the cost it covers
    assert to_micro_usd(D("1.0000001")) == 1_000_001
    assert to_micro_usd(D("0.000002")) == 2
    assert to_micro_usd(0) == 0
    assert from_micro_usd(1_500_000) == D("1.5")


def test_dollar_limits_are_validated_and_floored() -> None:
    assert usd_to_micro_limit(0.05) == 50_000
    assert usd_to_micro_limit("1.0000009") == 1_000_000
    for bad in (0, -1, True, "abc", float("nan"), None):
        with pytest.raises(ConfigurationError):
            usd_to_micro_limit(bad)


@given(inp=st.integers(0, 2_000_000), out=st.integers(0, 100_000), read=st.integers(0, 2_000_000),
       write=st.integers(0, 2_000_000))
def test_worst_case_covers_any_split_of_the_same_tokens(inp: int, out: int, read: int, write: int) -> None:
    book = PriceBook()
    for model in ("anthropic/claude-3-5-haiku-20241022", "openai/gpt-4o", "anthropic/claude-sonnet-4-5"):
        usage = Usage(input_tokens=inp + read + write, output_tokens=out, cache_read_tokens=read,
                      cache_write_tokens=write)
        assert book.worst_case(model, usage.input_tokens, out) >= book.cost(model, usage)


def test_rates_flat_uses_input_price_for_cache_tokens() -> None:
    rates = Rates.flat(D(1), D(2), "override")
    assert (rates.cache_read, rates.cache_write) == (D(1), D(1))


def test_the_last_model_looked_up_is_answered_from_memory_and_other_models_still_get_their_own_rates():
    from cascadeflow import ModelConfig
    from cascadeflow.pricing import PriceBook

    book = PriceBook()
    cheap = ModelConfig(name="c", provider="openai", input_price_per_million=1, output_price_per_million=2)
    dear = ModelConfig(name="d", provider="openai", input_price_per_million=10, output_price_per_million=20)
    for model, rate in ((cheap, 1), (cheap, 1), (dear, 10), (cheap, 1), ("openai/gpt-4o-mini", None)):
        rates = book.rates(model)
        if rate is not None:
            assert rates.input == rate and book.rates(model) is rates
    assert book.rates("openai/gpt-4o-mini") == book.rates(ModelConfig(name="gpt-4o-mini", provider="openai"))


def test_models_that_take_turns_keep_their_rates_without_being_priced_again() -> None:
    book = PriceBook()
    drafter = ModelConfig(name="c", provider="openai", input_price_per_million=1, output_price_per_million=2)
    verifier = ModelConfig(name="v", provider="openai", input_price_per_million=10, output_price_per_million=20)
    first = (book.rates(drafter), book.rates(verifier))
    for _ in range(3):  # a cascade's order: each lookup follows the other model's
        assert (book.rates(drafter), book.rates(verifier)) == first
        assert book.rates(drafter) is first[0] and book.rates(verifier) is first[1]  # remembered, not rebuilt
    assert (book.cost(drafter, Usage(1_000_000, 0)), book.cost(verifier, Usage(1_000_000, 0))) == (D(1), D(10))
    # a model built anew from a string is looked up again, and priced the same
    assert book.rates("openai/gpt-4o-mini") == book.rates("openai/gpt-4o-mini")


# --- flat costs against the Decimal formula PriceBook.cost had: the reference for faster arithmetic ---------

def decimal_formula_cost(rates: Rates, usage: Usage) -> Decimal:
    """The reference: PriceBook.cost's flat-rate formula as it was, all Decimal arithmetic."""
    uncached = max(usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0)
    total = (uncached * rates.input + usage.cache_read_tokens * rates.cache_read
             + usage.cache_write_tokens * rates.cache_write + usage.output_tokens * rates.output)
    return total / Decimal(1_000_000)


def priced(rates: Rates, usage: Usage) -> Decimal:
    return PriceBook({"openai/priced-in-test": rates}).cost("openai/priced-in-test", usage)


# 0 to 12 decimal places, trailing zeros kept ("0.60"): an integer form exists; 13 to 30 places: mostly not
COEFFICIENT = st.one_of(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**16))
RATES_WITH_PLACES = st.builds(lambda coefficient, places: Decimal(f"{coefficient}E-{places}"),
                              COEFFICIENT, st.integers(0, 12))
RATES_WITH_MORE_PLACES = st.builds(lambda coefficient, places: Decimal(f"{coefficient}E-{places}"),
                                   COEFFICIENT, st.integers(13, 30))
RATE = st.one_of(*[RATES_WITH_PLACES] * 6, RATES_WITH_MORE_PLACES,
                 st.sampled_from([D(0), D("0.00"), D("0E+3"), D("1E-12"), D(1) / D(3), D(10**19), D(10**28)]))
TOKENS = st.one_of(*[st.integers(0, 10**9)] * 7, st.integers(0, 10**30))  # a sum past 28 digits now and then


@settings(max_examples=500)
@given(rates=st.builds(lambda i, o, r, w: Rates(input=i, output=o, cache_read=r, cache_write=w,
                                                source="override"), RATE, RATE, RATE, RATE),
       inp=TOKENS, out=TOKENS, read=TOKENS, write=TOKENS)
def test_flat_costs_are_the_decimal_formulas_digit_for_digit(rates: Rates, inp: int, out: int, read: int,
                                                             write: int) -> None:
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write)
    cost, reference = priced(rates, usage), decimal_formula_cost(rates, usage)
    assert cost == reference and float(cost) == float(reference)
    assert cost.as_tuple() == reference.as_tuple()  # the same exponent too: str() is unchanged


def test_cache_tokens_beyond_the_input_clamp_uncached_input_to_zero() -> None:
    rates = Rates(input=D("0.8"), output=D(4), cache_read=D("0.08"), cache_write=D(1), source="override")
    usage = Usage(input_tokens=100, output_tokens=5, cache_read_tokens=80, cache_write_tokens=50)
    assert priced(rates, usage) == (80 * D("0.08") + 50 * D(1) + 5 * D(4)) / 1_000_000  # no negative input
    assert priced(rates, usage).as_tuple() == decimal_formula_cost(rates, usage).as_tuple()


def outcome(compute: Callable[[], Decimal]) -> tuple[str, str]:
    """A cost's digits (as_tuple: value, exponent and sign), or the exception it raised."""
    try:
        return "cost", repr(compute().as_tuple())
    except Exception as error:  # noqa: BLE001 - the reference may raise; the new code must raise the same
        return "raised", type(error).__name__


def test_rates_with_a_finite_decimal_expansion_are_summed_in_ints() -> None:
    mini = PriceBook().rates("openai/gpt-4o-mini")  # 0.15, 0.6, cache read 0.075: in units of 10**-3
    assert mini.integer_rates is not None and mini.integer_rates[:4] == (150, 600, 75, 150)
    assert Rates.flat(D("0.60"), D(4), "override").integer_rates[:4] == (60, 400, 60, 60)  # type: ignore[index]
    # the ints take no part in equality, hashing or repr
    same, written_apart = Rates.flat(D("0.6"), D(4), "config"), Rates.flat(D("0.60"), D(4), "config")
    assert same == written_apart and hash(same) == hash(written_apart)
    assert "integer" not in repr(mini)
    cfg = ModelConfig(name="m", provider="openai", input_price_per_million=D("0.15"),
                      output_price_per_million=D("0.60"))
    assert str(PriceBook().cost(cfg, Usage(12, 1))) == "0.0000024"  # as the Decimal formula writes it


@pytest.mark.parametrize("rate", [D(1) / D(3), D("1E-16"), D(10**28)])
def test_rates_without_an_integer_form_keep_the_decimal_formula(rate: Decimal) -> None:
    rates = Rates.flat(rate, D("0.6"), "override")
    assert rates.integer_rates is None
    usage = Usage(input_tokens=1_234_567, output_tokens=89, cache_read_tokens=4_567)
    assert priced(rates, usage).as_tuple() == decimal_formula_cost(rates, usage).as_tuple()


@pytest.mark.parametrize("rate", [D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity"), D("-0.15"), D("-0")])
@pytest.mark.parametrize("usage", [Usage(0, 0), Usage(12, 1), Usage(10, 3, cache_read_tokens=4)])
def test_nan_infinite_and_negative_rates_behave_as_before(rate: Decimal, usage: Usage) -> None:
    rates = Rates(input=rate, output=D("0.6"), cache_read=rate, cache_write=D("0.15"), source="override")
    assert rates.integer_rates is None
    assert outcome(lambda: priced(rates, usage)) == outcome(lambda: decimal_formula_cost(rates, usage))


@pytest.mark.parametrize("usage", [
    Usage(12.0, 1),  # type: ignore[arg-type]  # a float count: the Decimal formula raises TypeError
    Usage(D("12.5"), 1),  # type: ignore[arg-type]  # a Decimal count: the formula multiplies it as one
    pytest.param(Usage(np.int64(10**15), 1),  # type: ignore[arg-type]  # numpy ints would wrap past 2**63
                 marks=pytest.mark.filterwarnings("error:overflow encountered")),  # so they skip the int sum
    Usage(True, 1),  # a bool multiplies as 1
    Usage(0, -(10**25), cache_read_tokens=10**25 + 1),  # counts that cancel, each product rounded
    Usage(10**30, 10**30, cache_write_tokens=10**29),  # a sum beyond 28 digits
], ids=["float", "decimal", "numpy", "bool", "negative", "huge"])
def test_counts_outside_the_int_sum_cost_what_the_decimal_formula_says(usage: Usage) -> None:
    rates = Rates(input=D("0.1234567"), output=D("0.1234567"), cache_read=D("0.1234567"),
                  cache_write=D("1.2345678"), source="override")
    assert outcome(lambda: priced(rates, usage)) == outcome(lambda: decimal_formula_cost(rates, usage))


def test_sums_past_28_digits_round_as_the_decimal_formula_rounds_them() -> None:
    rates = Rates.flat(D(1), D(1), "override")
    # 10**28 + 6 rounds to 10**28 + 10, plus 6 to 10**28 + 20: rounding the exact 10**28 + 12 once gives + 10
    for usage in (Usage(10**28 - 1, 0), Usage(10**28 + 6, 6), Usage(10**27 + 5, 9 * 10**27 - 1)):
        assert priced(rates, usage).as_tuple() == decimal_formula_cost(rates, usage).as_tuple()


def test_a_lowered_decimal_precision_rounds_as_before() -> None:
    rates, usage = Rates.flat(D(1), D(1), "override"), Usage(1_004, 1_004)
    with localcontext() as context:
        context.prec = 3  # each product rounds to 1.00E+3: 2.00E+3 in all, not 2008 rounded to 2.01E+3
        assert priced(rates, usage).as_tuple() == decimal_formula_cost(rates, usage).as_tuple()
        assert priced(rates, usage) == D("0.002")


def test_rates_follow_each_configs_own_prices_for_the_same_model_name():
    # rates are remembered by the fields that decide them: two configs of one model name never share them
    book = PriceBook()
    cheap = ModelConfig(name="m", provider="openai", input_price_per_million=1, output_price_per_million=2)
    dear = ModelConfig(name="m", provider="openai", input_price_per_million=3, output_price_per_million=4)
    assert [book.rates(c).input for c in (cheap, dear, cheap, dear)] == [1, 3, 1, 3]
    assert book.rates(ModelConfig(name="m", provider="openai", cost=0.002)).input == 2
