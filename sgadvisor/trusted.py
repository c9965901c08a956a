"""Pydantic models built from values the analysis made itself, without validating them again.

A recommendation for a million edges holds over a million models (proposed rules with their evidence,
the report's edges, changes, flows not permitted). Their values are already of the model's types — ids
and addresses from the engine, rule fields from a normalised RuleKey — so validation would only copy
them; ``BaseModel.model_construct`` skips it but still walks every field's aliases and defaults in
Python. ``trusted`` does what it does for these plain frozen models, once per class for the walk:

- the field values, in the model's field order, defaults filled in (immutable ones shared, others made
  afresh as pydantic would);
- one set of given field names per class and call shape, shared by the models built alike: a set of five
  names is 0.7 KB, more than the values, and frozen models never add to it (``model_copy`` makes its own).

Only for models without private attributes, ``model_post_init``, root values or extra fields: anything
else is refused on first use. Serialised output is the same as a validated model's
(tests/test_trusted.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)

_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)
_MISSING = object()


@dataclass(frozen=True)
class _Blueprint:
    names: tuple[str, ...]  # every field, in the model's order
    known: frozenset[str]
    shared_defaults: dict[str, Any]  # immutable defaults, used as they are
    fresh_defaults: tuple[str, ...]  # fields whose default is made for each model (a list, a factory)


_BLUEPRINTS: dict[type[BaseModel], _Blueprint] = {}
_FIELD_SETS: dict[tuple[type[BaseModel], tuple[str, ...]], set[str]] = {}


def trusted(cls: type[ModelT], /, **values: Any) -> ModelT:
    """``cls(**values)`` without validation, for values already of the model's types (by field name)."""
    blueprint = _BLUEPRINTS.get(cls) or _blueprint(cls)
    if not values.keys() <= blueprint.known:
        raise TypeError(f"{cls.__name__} has no field {sorted(values.keys() - blueprint.known)[0]!r}")
    shared = blueprint.shared_defaults
    data: dict[str, Any] = {}
    for name in blueprint.names:
        value = values.get(name, _MISSING)
        if value is _MISSING:
            value = shared.get(name, _MISSING)
            if value is _MISSING:
                if name not in blueprint.fresh_defaults:
                    raise TypeError(f"{cls.__name__}: the required field {name!r} is missing")
                value = cls.model_fields[name].get_default(call_default_factory=True)
        data[name] = value
    shape = (cls, tuple(values))
    given = _FIELD_SETS.get(shape)
    if given is None:
        given = _FIELD_SETS[shape] = set(values)
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", data)
    object.__setattr__(model, "__pydantic_fields_set__", given)
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


def _blueprint(cls: type[BaseModel]) -> _Blueprint:
    if cls.__private_attributes__ or cls.__pydantic_post_init__ or cls.__pydantic_root_model__:
        raise TypeError(f"{cls.__name__} is not a plain model: build it with validation")
    if cls.model_config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__} allows extra fields: build it with validation")
    shared: dict[str, Any] = {}
    fresh: list[str] = []
    for name, info in cls.model_fields.items():
        if info.is_required():
            continue
        if info.default_factory is None and isinstance(info.default, _IMMUTABLE):
            shared[name] = info.default
        else:
            fresh.append(name)
    names = tuple(cls.model_fields)
    blueprint = _Blueprint(names, frozenset(names), shared, tuple(fresh))
    _BLUEPRINTS[cls] = blueprint
    return blueprint
