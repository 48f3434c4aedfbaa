"""Package attributes imported on first use (PEP 562): a package's `__getattr__` names the module each of its
public names lives in, so importing the package imports none of them, and no optional extra, until used."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import import_module
from typing import Any

from cascadeflow.errors import ConfigurationError


def lazy_attribute(package: str, homes: Mapping[str, str], name: str, *, renamed: Mapping[str, str] | None = None,
                   needs_extra: str | None = None) -> Any:
    """The package's attribute `name`, imported from its home module and kept in the package's namespace (the
    next access does not come here). `homes` maps a name to a module: a submodule's short name (`"query"`) or
    a dotted module path (`"cascadeflow.flow.client"`). `renamed`: names whose attribute in the home module is
    called otherwise. `needs_extra`: a home module that cannot be imported raises ConfigurationError naming the
    extra to install, instead of the bare ImportError."""
    home = homes.get(name)
    if home is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        module = import_module(home if "." in home else f"{package}.{home}")
    except ImportError as exc:
        if needs_extra is None:
            raise
        raise ConfigurationError(f"{name} needs the {needs_extra} extra ({exc.name} is missing): "
                                 f'pip install "cascadeflow[{needs_extra}]"') from exc
    value = getattr(module, (renamed or {}).get(name, name))
    setattr(sys.modules[package], name, value)
    return value
