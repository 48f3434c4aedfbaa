"""Compliance policies as data: which providers, models and regions a call may use, and what happens to
personal data in its messages. Presets live in `harness/presets/<name>.toml`; users load their own file or dict.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from cascadeflow.errors import ConfigurationError
from cascadeflow.harness.pii import PII_KINDS, find_pii, redact_text
from cascadeflow.messages import Message, Request, TextPart, ToolCall
from cascadeflow.models import ModelConfig

PRESETS: tuple[str, ...] = ("gdpr", "hipaa", "pci", "strict")
PII_ACTIONS = ("redact", "block", "allow")


@dataclass(frozen=True, slots=True)
class CompliancePolicy:
    """One compliance rule set. Empty `allowed_*` sets mean "no restriction"."""

    name: str
    description: str = ""
    allowed_providers: frozenset[str] = frozenset()
    allowed_models: frozenset[str] = frozenset()  # "provider/model" or bare model ids
    denied_models: frozenset[str] = frozenset()
    allowed_regions: frozenset[str] = frozenset()
    require_declared_region: bool = False
    pii_action: str = "allow"
    pii_kinds: tuple[str, ...] = ()
    block_kinds: tuple[str, ...] = ()
    cross_provider: bool = False

    def model_violation(self, model: ModelConfig) -> str | None:
        """Why `model` is not allowed under this policy, or None when it is."""
        if self.allowed_providers and model.provider not in self.allowed_providers:
            return f"{self.name}: provider {model.provider!r} is not in allowed providers " \
                   f"{sorted(self.allowed_providers)}"
        if model.id in self.denied_models or model.name in self.denied_models:
            return f"{self.name}: model {model.id!r} is denied"
        if self.allowed_models and not {model.id, model.name} & self.allowed_models:
            return f"{self.name}: model {model.id!r} is not in allowed models {sorted(self.allowed_models)}"
        if self.allowed_regions:
            region = model.extra.get("region")
            if region is None:
                if self.require_declared_region:
                    return f"{self.name}: model {model.id!r} declares no region (set extra={{'region': ...}})"
            elif str(region).lower() not in self.allowed_regions:
                return f"{self.name}: region {region!r} of {model.id!r} is not in {sorted(self.allowed_regions)}"
        return None

    def pii_found(self, request: Request) -> tuple[dict[str, int], dict[str, int]]:
        """(counts of kinds to redact, counts of kinds that block) found in the request's text."""
        redact: dict[str, int] = {}
        block: dict[str, int] = {}
        watched = set(self.pii_kinds) | set(self.block_kinds)
        if self.pii_action == "allow" and not self.block_kinds:
            return redact, block
        for text in request_texts(request):
            for match in find_pii(text, watched):
                blocking = match.kind in self.block_kinds or self.pii_action == "block"
                target = block if blocking else redact
                target[match.kind] = target.get(match.kind, 0) + 1
        return redact, block


def request_texts(request: Request) -> list[str]:
    """Every piece of text a request sends: message contents, text parts, tool-call arguments, the messages'
    `name` fields (a participant's name goes to the provider too)."""
    texts: list[str] = []
    for message in request.messages:
        if message.name:
            texts.append(message.name)
        if isinstance(message.content, str):
            texts.append(message.content)
        elif message.content:
            texts.extend(p.text for p in message.content if isinstance(p, TextPart))
        texts.extend(c.arguments for c in message.tool_calls)
    return texts


def redact_request(request: Request, kinds: tuple[str, ...]) -> Request:
    """The request with personal data of `kinds` replaced in place, message structure untouched."""
    return request.with_(messages=tuple(_redact_message(m, kinds) for m in request.messages))


def _redact_message(message: Message, kinds: tuple[str, ...]) -> Message:
    content = message.content
    if isinstance(content, str):
        content = redact_text(content, kinds)[0]
    elif content:
        content = tuple(replace(p, text=redact_text(p.text, kinds)[0]) if isinstance(p, TextPart) else p
                        for p in content)
    calls = tuple(ToolCall(id=c.id, name=c.name, arguments=redact_text(c.arguments, kinds)[0])
                  for c in message.tool_calls)
    # a name must stay a bare identifier for the APIs (OpenAI: [A-Za-z0-9_-]), so a name with PII is replaced whole
    name = "redacted" if message.name and find_pii(message.name, kinds) else message.name
    return replace(message, content=content, tool_calls=calls, name=name)


def load_compliance(spec: str | Mapping[str, Any] | CompliancePolicy) -> CompliancePolicy:
    """A preset name ("gdpr", "hipaa", "pci", "strict"), a dict, or a policy. A file is loaded only through
    `load_compliance_file` (`compliance_file=`), so a name can never be taken for a path."""
    if isinstance(spec, CompliancePolicy):
        return spec
    if isinstance(spec, Mapping):
        return _from_mapping(spec, default_name="custom")
    if isinstance(spec, str):
        name = spec.strip().lower()
        if name not in PRESETS:
            raise ConfigurationError(f"unknown compliance preset {spec!r}; presets: {', '.join(PRESETS)} "
                                     f"(or pass a dict, or a TOML file as compliance_file=...)")
        text = resources.files("cascadeflow.harness.presets").joinpath(f"{name}.toml").read_text()
        return _from_mapping(_parse_toml(text, f"{name}.toml"), default_name=name)
    if isinstance(spec, os.PathLike):
        raise ConfigurationError(f"compliance={spec!r} is a path: pass a compliance file as compliance_file=...")
    raise ConfigurationError(f"compliance must be a preset name, a dict or a CompliancePolicy, got "
                             f"{type(spec).__name__}")


def load_compliance_file(path: str | os.PathLike[str]) -> CompliancePolicy:
    """A policy from a TOML file. It may not take a preset's name: a record saying `gdpr` must mean the preset."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigurationError(f"compliance_file must be a path, got {type(path).__name__}")
    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"compliance file {str(file)!r} does not exist")
    policy = _from_mapping(_parse_toml(file.read_text(), str(file)), default_name=file.stem)
    if policy.name.strip().lower() in PRESETS:
        raise ConfigurationError(f"compliance file {str(file)!r} names itself {policy.name!r}, a preset's name; "
                                 f"give it a name of its own")
    return policy


def resolve_compliance(compliance: str | Mapping[str, Any] | CompliancePolicy | None,
                       compliance_file: str | os.PathLike[str] | None) -> CompliancePolicy | None:
    """The policy of `compliance=` or `compliance_file=` (at most one of them), or None."""
    if compliance is not None and compliance_file is not None:
        raise ConfigurationError("pass compliance= (a preset, dict or policy) or compliance_file= (a TOML file), "
                                 "not both")
    if compliance_file is not None:
        return load_compliance_file(compliance_file)
    return load_compliance(compliance) if compliance is not None else None


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"compliance file {where}: {exc}") from None


def _strings(data: Mapping[str, Any], section: str, key: str, where: str) -> frozenset[str]:
    value = (data.get(section) or {}).get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"compliance {where}: [{section}] {key} must be a list of strings")
    return frozenset(v.lower() if section == "regions" else v for v in value)


def _from_mapping(data: Mapping[str, Any], *, default_name: str) -> CompliancePolicy:
    name = str(data.get("name") or default_name)
    pii = data.get("pii") or {}
    action = pii.get("action", "allow")
    if action not in PII_ACTIONS:
        raise ConfigurationError(f"compliance {name}: [pii] action must be one of {PII_ACTIONS}, got {action!r}")
    kinds = tuple(pii.get("kinds", PII_KINDS if action != "allow" else ()))
    block_kinds = tuple(pii.get("block_kinds", ()))
    unknown = set(kinds) | set(block_kinds)
    unknown -= set(PII_KINDS)
    if unknown:
        raise ConfigurationError(f"compliance {name}: unknown PII kinds {sorted(unknown)}; known: {PII_KINDS}")
    return CompliancePolicy(
        name=name, description=str(data.get("description", "")),
        allowed_providers=_strings(data, "providers", "allowed", name),
        allowed_models=_strings(data, "models", "allowed", name),
        denied_models=_strings(data, "models", "denied", name),
        allowed_regions=_strings(data, "regions", "allowed", name),
        require_declared_region=bool((data.get("regions") or {}).get("require_declared", False)),
        pii_action=action, pii_kinds=kinds, block_kinds=block_kinds,
        cross_provider=bool((data.get("switching") or {}).get("cross_provider", False)),
    )
