"""Cost of a call from its Usage: the genai-prices data (offline, Decimal) under a local override layer.

Order of precedence for a model's rates: the ModelConfig's own prices > PriceBook overrides > genai-prices >
self-hosted ($0, or a declared compute price per hour) > the configured unknown-model ceiling > error.
Money that accumulates is Decimal here and integer micro-USD in ledgers (`to_micro_usd` rounds up, so a
reservation is never smaller than the cost it covers).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, getcontext
from typing import Literal

from cascadeflow.errors import ConfigurationError, UnknownModelPriceError
from cascadeflow.messages import Usage
from cascadeflow.models import ModelConfig, as_model_config

MILLION = Decimal(1_000_000)
PriceSource = Literal["config", "override", "genai-prices", "self-hosted", "compute", "ceiling"]
IntegerRates = tuple[int, int, int, int, Decimal]  # input, output, cache_read, cache_write, divisor
# A flat cost is summed in ints while the sum has at most this many digits and the Decimal context keeps as
# many (28, its default): then the Decimal formula rounds nothing either, and both give the same digits.
_EXACT_DIGITS = 28
_EXACT_LIMIT = 10**_EXACT_DIGITS
_MAX_PLACES = 15  # rates written with more decimal places keep the Decimal formula
_CACHED_MODELS = 4096  # distinct model configurations a PriceBook remembers the rates of


@dataclass(frozen=True, slots=True, kw_only=True)
class Rates:
    """USD per million tokens. `compute_per_hour` is set for compute-priced self-hosted models."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    source: PriceSource
    tiered: bool = False  # genai-prices has context-length tiers: exact costs go through its calculator
    compute_per_hour: Decimal | None = None
    model_ref: str | None = None  # the id genai-prices matched (audit: what we priced it as)
    # the four rates as ints for PriceBook.cost, or None (it uses the Decimal formula)
    integer_rates: IntegerRates | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "integer_rates", _integer_rates(
            (self.input, self.output, self.cache_read, self.cache_write)))

    @classmethod
    def flat(cls, input: Decimal, output: Decimal, source: PriceSource) -> Rates:
        return cls(input=input, output=output, cache_read=input, cache_write=input, source=source)


def _integer_rates(rates: tuple[Decimal, Decimal, Decimal, Decimal]) -> IntegerRates | None:
    """The rates as ints in units of 10**e, e the smallest exponent they are written with, and MILLION
    written with exponent -e. sum(tokens * int) is then the coefficient of the Decimal formula's sum (whose
    exponent is e), and that sum / divisor is the formula's `sum / MILLION`: same value and same ideal
    exponent, so the same digits (str() included)."""
    for rate in rates:
        if type(rate) is not Decimal or not rate.is_finite() or rate.is_signed() or rate >= _EXACT_LIMIT:
            return None  # NaN, infinite, negative (terms could cancel), huge, not a Decimal: the formula
    unit = min(int(rate.as_tuple().exponent) for rate in rates)
    if not -_MAX_PLACES <= unit <= 0:  # more places, or all written as 1E+1 and the like: the formula
        return None
    scale = 10**-unit
    # as_integer_ratio is exact whatever the Decimal context; each rate times `scale` is a whole number
    i_in, i_out, i_read, i_write = (num * scale // den for num, den in map(Decimal.as_integer_ratio, rates))
    return i_in, i_out, i_read, i_write, Decimal((0, (1, 0, 0, 0, 0, 0, 0), -unit))


def rates_from_config(cfg: ModelConfig) -> Rates | None:
    """A ModelConfig's own declared prices, if any."""
    if cfg.input_price_per_million is not None or cfg.output_price_per_million is not None:
        inp = cfg.input_price_per_million or Decimal(0)
        out = cfg.output_price_per_million if cfg.output_price_per_million is not None else inp
        return Rates.flat(Decimal(inp), Decimal(out), "config")
    if cfg.cost_per_token is not None:
        per_m = Decimal(cfg.cost_per_token) * MILLION
        return Rates.flat(per_m, per_m, "config")
    if cfg.cost is not None:
        per_m = Decimal(cfg.cost) * 1000  # per 1K tokens -> per million
        return Rates.flat(per_m, per_m, "config")
    if cfg.compute_cost_per_hour is not None:
        zero = Decimal(0)
        return Rates(input=zero, output=zero, cache_read=zero, cache_write=zero, source="compute",
                     compute_per_hour=Decimal(cfg.compute_cost_per_hour))
    return None


def _price_value(value: object, worst: bool) -> tuple[Decimal, bool]:
    """A genai-prices price: a Decimal, or TieredPrices (base + tiers); returns (price, tiered)."""
    if value is None:
        return Decimal(0), False
    if isinstance(value, Decimal):
        return value, False
    base = Decimal(value.base)  # type: ignore[attr-defined]
    tiers = [Decimal(t.price) for t in getattr(value, "tiers", ())]
    return (max([base, *tiers]) if worst else base), True


class PriceBook:
    """Looks up rates and computes costs. Lookups are cached (genai-prices takes ~100 µs per lookup)."""

    def __init__(
        self,
        overrides: Mapping[str, Rates | Mapping[str, float]] | None = None,
        *,
        unknown_model_ceiling: tuple[float, float] | None = None,
    ):
        self._overrides: dict[str, Rates] = {}
        for key, value in (overrides or {}).items():
            self._overrides[key] = value if isinstance(value, Rates) else Rates.flat(
                Decimal(str(value["input"])), Decimal(str(value["output"])), "override")
        if unknown_model_ceiling is not None:
            inp, out = (Decimal(str(v)) for v in unknown_model_ceiling)
            if inp < 0 or out < 0:
                raise ConfigurationError("unknown_model_ceiling prices must be non-negative")
            self._ceiling: Rates | None = Rates.flat(inp, out, "ceiling")
        else:
            self._ceiling = None
        self._cache: dict[tuple[object, ...], Rates] = {}  # see rates()
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The price data version, recorded in every audit record."""
        return price_data_version()

    def rates(self, model: ModelConfig | str) -> Rates:
        cfg = as_model_config(model)
        # keyed by every field that decides the rates (a ModelConfig itself may hold unhashable extras)
        key = (cfg.provider or "", cfg.name, cfg.input_price_per_million, cfg.output_price_per_million,
               cfg.cost_per_token, cfg.cost, cfg.compute_cost_per_hour)
        found = self._cache.get(key)
        if found is None:
            found = rates_from_config(cfg) or self._lookup(cfg)
            with self._lock:
                if len(self._cache) >= _CACHED_MODELS:
                    self._cache.clear()
                self._cache[key] = found
        return found

    def _lookup(self, cfg: ModelConfig) -> Rates:
        override = self._overrides.get(cfg.id) or self._overrides.get(cfg.name)
        if override is not None:
            return override
        facts = cfg.facts
        if facts.price_id is not None:
            found = _genai_rates(facts.price_id, cfg.name)
            if found is not None:
                return found
        if facts.self_hosted:
            zero = Decimal(0)
            return Rates(input=zero, output=zero, cache_read=zero, cache_write=zero, source="self-hosted")
        if self._ceiling is not None:
            return self._ceiling
        raise UnknownModelPriceError(cfg.provider, cfg.name)

    def cost(self, model: ModelConfig | str, usage: Usage, *, latency_s: float | None = None) -> Decimal:
        """Exact USD cost of a call."""
        cfg = as_model_config(model)
        r = self.rates(cfg)
        if r.compute_per_hour is not None:
            return r.compute_per_hour * Decimal(str(latency_s or 0.0)) / 3600
        if r.tiered:
            return _genai_cost(cfg.facts.price_id or "", r.model_ref or cfg.name, usage)
        read, write, out = usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens
        uncached = usage.input_tokens - read - write
        if uncached < 0:  # noqa: PLR1730 - max(uncached, 0) without a builtin call: a fifth of this method
            uncached = 0
        # the formula below in ints, then one Decimal division; counts of other types (numpy, float, bool)
        # take the formula itself, so a numpy int64 never overflows (with a warning) on the way
        if (r.integer_rates is not None and type(uncached) is int and type(read) is int and type(write) is int
                and type(out) is int):
            i_in, i_out, i_read, i_write, divisor = r.integer_rates
            exact = uncached * i_in + read * i_read + write * i_write + out * i_out
            # a negative count could hide large terms that cancel; within the context's precision the
            # formula below rounds nothing (users may lower it)
            if (read | write | out) >= 0 and exact < _EXACT_LIMIT and getcontext().prec >= _EXACT_DIGITS:
                return exact / divisor  # the int converts exactly: the formula's sum / MILLION
        total = uncached * r.input + read * r.cache_read + write * r.cache_write + out * r.output
        return total / MILLION

    def worst_case(self, model: ModelConfig | str, input_tokens: int, max_output_tokens: int,
                   *, max_seconds: float | None = None) -> Decimal:
        """Upper bound of a call's cost: every input token at the highest input rate, all max_tokens used."""
        cfg = as_model_config(model)
        r = self.rates(cfg)
        if r.compute_per_hour is not None:
            seconds = max_seconds if max_seconds is not None else compute_seconds_bound(cfg, input_tokens,
                                                                                        max_output_tokens)
            return r.compute_per_hour * Decimal(str(seconds)) / 3600
        top_in = max(r.input, r.cache_write)
        if r.tiered:
            top_in, top_out = _genai_worst_rates(cfg.facts.price_id or "", r.model_ref or cfg.name)
        else:
            top_out = r.output
        return (input_tokens * top_in + max_output_tokens * top_out) / MILLION


def compute_seconds_bound(cfg: ModelConfig, input_tokens: int, max_output_tokens: int) -> float:
    """Worst-case seconds of machine time for a compute-priced model (slowest throughput it declares)."""
    tps = float(cfg.extra.get("min_tokens_per_second", 5.0))
    prompt_tps = float(cfg.extra.get("min_prompt_tokens_per_second", 50.0))
    return input_tokens / prompt_tps + max_output_tokens / tps + 1.0


def to_micro_usd(amount: Decimal | float) -> int:
    """USD -> integer micro-USD, rounded up (a reservation must cover the cost)."""
    dec = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return int((dec * MILLION).to_integral_value(rounding=ROUND_CEILING))


def from_micro_usd(micro: int) -> Decimal:
    return Decimal(micro) / MILLION


MAX_LIMIT_USD = 10**12  # = budget.ledger.MAX_MICRO in dollars


def usd_to_micro_limit(value: object, what: str = "limit") -> int:
    """Validate a user-given dollar limit (positive, finite, numeric) and convert it to micro-USD."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ConfigurationError(f"{what} must be a number of US dollars, got {value!r}")
    try:
        dec = Decimal(str(value))
    except ArithmeticError:  # decimal.InvalidOperation
        raise ConfigurationError(f"{what} must be a number of US dollars, got {value!r}") from None
    if not dec.is_finite() or dec <= 0:
        raise ConfigurationError(f"{what} must be a positive number of US dollars, got {value!r}")
    if dec > MAX_LIMIT_USD:
        raise ConfigurationError(f"{what} must be at most ${MAX_LIMIT_USD:,} (what a budget store can hold), "
                                 f"got {value!r}")
    return int((dec * MILLION).to_integral_value(rounding="ROUND_FLOOR"))


@functools.cache  # the installed price data cannot change under a running process; every record carries it
def price_data_version() -> str:
    import genai_prices

    return f"genai-prices {genai_prices.__version__}"


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _genai_model(price_id: str, model: str):  # type: ignore[no-untyped-def]
    from genai_prices import data_snapshot

    try:
        return data_snapshot.get_snapshot().find_provider_model(model, None, price_id, None)[1]
    except LookupError:
        return None


def _genai_rates(price_id: str, model: str) -> Rates | None:
    info = _genai_model(price_id, model)
    return None if info is None else rates_of_genai_model(info)


def rates_of_genai_model(info: object) -> Rates:
    """Today's rates of one genai-prices model entry (listings use it for ids the matcher cannot resolve)."""
    prices = info.get_prices(_now())  # type: ignore[attr-defined]
    inp, t1 = _price_value(getattr(prices, "input_mtok", None), worst=False)
    out, t2 = _price_value(getattr(prices, "output_mtok", None), worst=False)
    cr, t3 = _price_value(getattr(prices, "cache_read_mtok", None), worst=False)
    cw, t4 = _price_value(getattr(prices, "cache_write_mtok", None), worst=False)
    if getattr(prices, "cache_read_mtok", None) is None:
        cr = inp
    if getattr(prices, "cache_write_mtok", None) is None:
        cw = inp
    return Rates(input=inp, output=out, cache_read=cr, cache_write=cw, source="genai-prices",
                 tiered=t1 or t2 or t3 or t4, model_ref=info.id)  # type: ignore[attr-defined]


def _genai_worst_rates(price_id: str, model: str) -> tuple[Decimal, Decimal]:
    info = _genai_model(price_id, model)
    prices = info.get_prices(_now())
    inp, _ = _price_value(getattr(prices, "input_mtok", None), worst=True)
    cw, _ = _price_value(getattr(prices, "cache_write_mtok", None), worst=True)
    out, _ = _price_value(getattr(prices, "output_mtok", None), worst=True)
    return max(inp, cw), out


def _genai_cost(price_id: str, model: str, usage: Usage) -> Decimal:
    from genai_prices import Usage as GUsage
    from genai_prices import calc_price

    gu = GUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens)
    return Decimal(calc_price(gu, model, provider_id=price_id).total_price)

