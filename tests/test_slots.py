"""slot_init: the generated __init__ builds what the dataclass's own __init__ builds, and refuses classes it would
get wrong."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascadeflow import messages
from cascadeflow.budget import ledger
from cascadeflow.slots import slot_init


def _decorated() -> list[type]:
    found = []
    for module in (messages, ledger):
        for value in vars(module).values():
            if isinstance(value, type) and hasattr(value.__init__, "dataclass_init") and value.__module__ == module.__name__:
                found.append(value)
    return found


DECORATED = _decorated()
HOT = {"Message", "Request", "Usage", "Response", "BudgetState", "Reservation", "Settlement"}


def test_the_classes_built_on_every_call_have_it():
    assert HOT <= {cls.__name__ for cls in DECORATED}


def _original(cls: type, *args: object, **kwargs: object) -> object:
    obj = object.__new__(cls)
    cls.__init__.dataclass_init(obj, *args, **kwargs)
    return obj


def _values(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


@pytest.mark.parametrize("cls", DECORATED, ids=lambda c: c.__name__)
def test_the_signature_is_the_dataclass_signature(cls):
    assert str(inspect.signature(cls.__init__)) == str(inspect.signature(cls.__init__.dataclass_init))
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


VALUE = st.one_of(st.none(), st.integers(), st.text(max_size=4), st.tuples(st.integers()))


@settings(max_examples=300)
@given(cls=st.sampled_from(DECORATED), data=st.data())
def test_any_call_builds_the_same_instance_as_the_dataclass_init(cls, data):
    fields = dataclasses.fields(cls)
    required = sum(1 for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    given_count = data.draw(st.integers(required, len(fields)))
    positional = data.draw(st.integers(0, given_count))
    values = [data.draw(VALUE) for _ in range(given_count)]
    args = values[:positional]
    kwargs = {f.name: v for f, v in zip(fields[positional:given_count], values[positional:], strict=True)}
    built, reference = cls(*args, **kwargs), _original(cls, *args, **kwargs)
    assert _values(built) == _values(reference)
    for f in fields[given_count:]:  # defaults: the same object; factories: a fresh one per instance
        if f.default is not dataclasses.MISSING:
            assert getattr(built, f.name) is f.default
        else:
            assert getattr(built, f.name) == f.default_factory()
            assert getattr(built, f.name) is not getattr(cls(*args, **kwargs), f.name)


@pytest.mark.parametrize("cls", DECORATED, ids=lambda c: c.__name__)
def test_a_wrong_call_fails_as_the_dataclass_init_fails(cls):
    required = [f for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for args, kwargs in [((), {}), ((None,) * 40, {}), ((), {"no_such_field": 1})]:
        if not args and not kwargs and not required:  # a class whose every field has a default takes ()
            continue
        with pytest.raises(TypeError):
            _original(cls, *args, **kwargs)
        with pytest.raises(TypeError):
            cls(*args, **kwargs)


def test_instances_stay_frozen_hashable_picklable_and_replaceable():
    request = messages.Request((messages.Message("user", "hi"),), "gpt-4o-mini", 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.model = "other"  # type: ignore[misc]
    assert hash(messages.Usage(3, 4)) == hash(_original(messages.Usage, 3, 4))
    assert pickle.loads(pickle.dumps(request)) == request
    assert copy.deepcopy(request) == request
    assert dataclasses.replace(request, model="other").model == "other"
    assert dataclasses.replace(request, model="other").messages is request.messages


def test_classes_it_would_get_wrong_are_refused_at_definition():
    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: InitVar[int] = 0

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int
        b: int = field(default=0, kw_only=True)

    @dataclass(frozen=True, slots=True)
    class NotInInit:
        a: int
        b: int = field(default=0, init=False)

    for cls in (NotFrozen, NoSlots, PostInit, WithInitVar, KeywordOnly, NotInInit):
        with pytest.raises(TypeError, match="slot_init"):
            slot_init(cls)
    with pytest.raises(TypeError, match="slot_init"):
        slot_init(int)
