"""`slot_init`: a faster `__init__` for the frozen slotted dataclasses built on every call's path.

A frozen dataclass's generated `__init__` stores each field with `object.__setattr__(self, name, value)`, which
looks the name up on the type again for every field of every instance. A slotted class already holds each
field's slot descriptor; `slot_init` generates an `__init__` that stores through those descriptors directly:
the same stores, the same signature, the same defaults, without the lookups. Instances stay frozen (the
class's `__setattr__` is untouched) and equal to what the dataclass's own `__init__` builds; the tests hold
the two side by side. The in-place gain is in docs/bench/harness.md.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


class _Factory:
    """The default of a field with a default_factory (shown as `<factory>`, as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def slot_init(cls: type[T]) -> type[T]:
    """Replace a frozen, slotted dataclass's `__init__` with one that stores through its slot descriptors.

    Put it above `@dataclass(frozen=True, slots=True)`. Refuses (TypeError, at import) a class it would get
    wrong: not a frozen slotted dataclass, or one with `__post_init__`, `InitVar`, keyword-only or `init=False`
    fields."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"slot_init needs a @dataclass(frozen=True, slots=True) class, got {cls.__qualname__}")
    fields = dataclasses.fields(cls)
    original = inspect.signature(cls.__init__).parameters
    plain = [name for name, p in original.items() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]  # without self
    # an InitVar adds a name no field has; a keyword-only or init=False field is missing from the plain names
    if hasattr(cls, "__post_init__") or plain != [f.name for f in fields]:
        raise TypeError(f"slot_init takes only plain init fields, no __post_init__, InitVar, keyword-only or "
                        f"init=False fields ({cls.__qualname__})")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    params_src, body = [], []
    for i, f in enumerate(fields):
        namespace[f"_set{i}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        if f.default is not dataclasses.MISSING:
            namespace[f"_default{i}"] = f.default
            params_src.append(f"{f.name}=_default{i}")
            body.append(f"    _set{i}(self, {f.name})")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{i}"] = f.default_factory
            params_src.append(f"{f.name}=_FACTORY")
            body.append(f"    _set{i}(self, _factory{i}() if {f.name} is _FACTORY else {f.name})")
        else:
            params_src.append(f.name)
            body.append(f"    _set{i}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params_src)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)  # noqa: S102 - the source is built above from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(inspect.get_annotations(cls.__init__))
    init.dataclass_init = cls.__init__  # the generated original, kept for the tests that compare the two
    cls.__init__ = init  # type: ignore[misc]
    return cls
