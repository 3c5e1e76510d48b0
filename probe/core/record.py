"""Frozen dataclasses that read and write one JSON object exactly as it was on the wire.

A measurement is a contract (OONI's data format plus Kuzot's keys) and a stored measurement is
evidence: code that types it must not change one byte of it. ``WireRecord`` gives its subclasses
``from_wire(dict)`` and ``to_wire()`` such that ``to_wire(from_wire(d))`` serialises to the same
JSON text as ``d``:

* the typed fields are the keys a reader relies on, each checked against its annotation
  (``str``, ``int``, ``float``, ``bool``, unions with ``None``, ``tuple[T, ...]`` for a JSON
  list, ``Mapping[str, Any]`` for an object read as it is, another ``WireRecord`` for an object
  with a model of its own, ``Any`` for anything);
* every other key is kept in ``extra``, and the order of the keys in ``order``;
* an absent key and a key whose value is ``null`` stay apart: the field reads ``None`` for
  both, but only a key present on the wire is written back;
* values are kept as parsed (an integer stays an integer where the field is a ``float``).

A field's wire name is its own name. Records built in code (``order`` empty) write their
declared fields in declaration order, leaving out those named in ``OMIT_NONE`` while they are
``None``, then ``extra``.

Nested JSON without a model (``Mapping``, ``Any``) is kept as parsed, not copied: treat it as
read-only.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar, Union

JSONObject = Mapping[str, Any]

R = TypeVar("R", bound="WireRecord")


class ModelError(ValueError):
    """A JSON value that does not fit the model; the message names its key path."""


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    hint: Any


_SPECS: dict[type, tuple[_Spec, ...]] = {}


def _specs(cls: type[WireRecord]) -> tuple[_Spec, ...]:
    found = _SPECS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple(_Spec(f.name, hints[f.name]) for f in dataclasses.fields(cls)
                      if f.name not in ("extra", "order"))
        _SPECS[cls] = found
    return found


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expected(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if hint is str:
        return "a string"
    if hint is bool:
        return "a boolean"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if origin is tuple:
        return "a list"
    return "an object"


def _decode(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against ``hint``; lists become tuples, modelled objects records."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1 and value is not None:
            # One shape: report the innermost key that does not fit, not this one.
            try:
                return _decode(value, others[0], path)
            except ModelError as exc:
                if not str(exc).startswith(f"{path}: "):
                    raise
        else:
            for arg in others:
                try:
                    return _decode(value, arg, path)
                except ModelError:
                    continue
        raise ModelError(f"{path}: expected {_expected(hint)}, got {_kind(value)}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    elif origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if isinstance(value, list):
            return tuple(_decode(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    elif isinstance(hint, type) and issubclass(hint, WireRecord):
        if isinstance(value, dict):
            return hint.from_wire(value, path)
    elif origin is Mapping or hint is Mapping:
        if isinstance(value, dict):
            return value
    else:  # pragma: no cover - a model declared with an unsupported annotation
        raise TypeError(f"{path}: unsupported annotation {hint!r}")
    raise ModelError(f"{path}: expected {_expected(hint)}, got {_kind(value)}")


def read(cls: type[R], data: JSONObject, path: str = "$") -> R:
    """``cls.from_wire`` without the class's own checks: what an override of ``from_wire``
    calls first (a slotted dataclass cannot use the zero-argument ``super()``)."""
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected an object, got {_kind(data)}")
    specs = _specs(cls)
    declared = {s.name for s in specs}
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name in data:
            values[spec.name] = _decode(data[spec.name], spec.hint, f"{path}.{spec.name}")
    extra = {k: v for k, v in data.items() if k not in declared}
    return cls(**values, extra=extra, order=tuple(data))


def _encode(value: Any) -> Any:
    if isinstance(value, WireRecord):
        return value.to_wire()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class WireRecord:
    """Base of every model of a JSON object (see the module docstring)."""

    # Keys written only when not None by a record built in code (optional additions).
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    extra: JSONObject = field(default_factory=dict, repr=False)
    order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: JSONObject, path: str = "$") -> Self:
        """The record of JSON object ``data``; raises ModelError naming the key that does not
        fit. ``path`` prefixes key paths in messages."""
        return read(cls, data, path)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object, keys in their wire order; ``json.dumps`` of it gives back the
        bytes ``from_wire`` read."""
        specs = _specs(type(self))
        out: dict[str, Any] = {}
        if self.order:
            declared = {s.name for s in specs}
            for key in self.order:
                if key in declared:
                    out[key] = _encode(getattr(self, key))
                elif key in self.extra:
                    out[key] = self.extra[key]
            # Fields set in code after reading (a new verdict, say) follow the wire's keys.
            for spec in specs:
                if spec.name not in out and getattr(self, spec.name) is not None:
                    out[spec.name] = _encode(getattr(self, spec.name))
        else:
            for spec in specs:
                value = getattr(self, spec.name)
                if value is None and spec.name in self.OMIT_NONE:
                    continue
                out[spec.name] = _encode(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def present(self, name: str) -> bool:
        """Whether key ``name`` was on the wire (``None`` fields may be absent or null)."""
        return name in self.order if self.order else getattr(self, name, None) is not None
