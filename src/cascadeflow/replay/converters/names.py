"""Model names found in recorded data -> priced `ModelConfig`s: explicit prices first, then a mapping the user
gives, then the price book. Converters never carry a list of the models they know: recorded data from any
model converts once its price is known, and the names whose price is not are all reported at once."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from cascadeflow.errors import ReplayDataError
from cascadeflow.models import PROVIDERS, ModelConfig

PRICE_HINT = ("give its price with --price MODEL=INPUT,OUTPUT (USD per million tokens) or map it to a priced "
              "model id in a --models file (JSON or TOML: name = \"provider/model\" or {input=.., output=..})")


def parse_price(spec: str) -> tuple[str, Decimal, Decimal]:
    """`MODEL=IN,OUT` (USD per million input and output tokens) -> (model, in, out)."""
    name, sep, rates = spec.rpartition("=")
    parts = rates.split(",")
    if not sep or not name.strip() or len(parts) != 2:
        raise ReplayDataError(f"--price {spec!r}: write MODEL=INPUT,OUTPUT in USD per million tokens, "
                              f"e.g. my-model=0.15,0.60")
    try:
        low, high = (Decimal(p.strip()) for p in parts)
    except InvalidOperation:
        raise ReplayDataError(f"--price {spec!r}: the prices must be numbers, e.g. my-model=0.15,0.60") from None
    if not (low.is_finite() and high.is_finite()) or low < 0 or high < 0:
        raise ReplayDataError(f"--price {spec!r}: prices must be finite and not negative")
    return name.strip(), low, high


def read_mapping(path: Path) -> dict[str, Any]:
    """A --models file: JSON or TOML, each recorded name -> "provider/model" or {input = .., output = ..}."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ReplayDataError(f"cannot read the model mapping: {exc}", path=str(path)) from None
    if not isinstance(data, dict):
        raise ReplayDataError("the model mapping must be a table of recorded name -> model", path=str(path))
    return data


@dataclass(frozen=True)
class ModelResolver:
    """Turns recorded model names into priced model configs (see the module docstring for the order)."""

    prices: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    mapping: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, prices: Iterable[str] = (), mapping_file: Path | None = None) -> ModelResolver:
        parsed = {name: (low, high) for name, low, high in map(parse_price, prices)}
        return cls(prices=parsed, mapping=read_mapping(mapping_file) if mapping_file else {})

    def resolve_all(self, names: Iterable[str], *, source: str) -> dict[str, ModelConfig]:
        """Every name resolved, or one error naming each name that could not be."""
        resolved: dict[str, ModelConfig] = {}
        unknown: list[str] = []
        for name in dict.fromkeys(names):
            cfg = self.resolve(name)
            if cfg is None:
                unknown.append(name)
            else:
                resolved[name] = cfg
        if unknown:
            raise ReplayDataError(f"no price known for model(s) {', '.join(map(repr, unknown))}; {PRICE_HINT}",
                                  path=source)
        return resolved

    def resolve(self, name: str) -> ModelConfig | None:
        if name in self.prices:
            low, high = self.prices[name]
            return priced_model(name, low, high)
        target = self.mapping.get(name)
        if isinstance(target, Mapping):
            try:
                return priced_model(name, Decimal(str(target["input"])), Decimal(str(target["output"])))
            except (KeyError, InvalidOperation):
                raise ReplayDataError(f"the mapping of {name!r} needs numeric input and output prices "
                                      f"(USD per million tokens)") from None
        if isinstance(target, str):
            found = from_price_book(target)
            if found is None:
                raise ReplayDataError(f"the mapping sends {name!r} to {target!r}, which the price book does not "
                                      f"know; write it as provider/model or give its prices")
            return found
        return from_price_book(name)


def priced_model(name: str, low: Decimal | float, high: Decimal | float) -> ModelConfig:
    """`name` at the given prices, under its real provider when the price book knows it (audit records and
    tier checks then name the real model), else under the replay provider that serves recorded answers."""
    known = from_price_book(name)
    if known is not None:
        return ModelConfig(name=known.name, provider=known.provider, input_price_per_million=low,
                           output_price_per_million=high)
    return ModelConfig(name=name, provider="replay", input_price_per_million=low, output_price_per_million=high)


def from_price_book(name: str) -> ModelConfig | None:
    """The model's vendor as the price data knows it; a `provider/model` name is looked up at that provider.
    A name that several of our providers price, none of them the model's own vendor, stays unresolved
    rather than priced at a host picked by chance."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    ours = {facts.price_id: facts.name for facts in PROVIDERS.values() if facts.price_id}
    head, _, rest = name.partition("/")
    if rest and head in PROVIDERS and PROVIDERS[head].price_id:
        candidates = [(head, rest)]
    else:
        try:
            provider, _info = snapshot.find_provider_model(name, None, None, None)
        except LookupError:
            provider = None
        if provider is not None and provider.id in ours:
            candidates = [(ours[provider.id], name)]
        else:
            candidates = [(ours[pid], name) for pid in ours if _priced_at(snapshot, name, pid)]
    if len(candidates) != 1:
        return None
    provider_name, model = candidates[0]
    if not _priced_at(snapshot, model, PROVIDERS[provider_name].price_id):
        return None
    return ModelConfig(name=model, provider=provider_name)


def _priced_at(snapshot: Any, model: str, price_id: str | None) -> bool:
    try:
        snapshot.find_provider_model(model, None, price_id, None)
    except LookupError:
        return False
    return True
