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

A field's wire name is its own name. Records built in code (``order`` None) write their
declared fields in declaration order, leaving out those named in ``OMIT_NONE`` while they are
``None``, then ``extra``.

Nested JSON without a model (``Mapping``, ``Any``) is kept as parsed, not copied: treat it as
read-only.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar, Union

JSONObject = Mapping[str, Any]

R = TypeVar("R", bound="WireRecord")


class ModelError(ValueError):
    """A JSON value that does not fit the model; the message names its key path."""


Decoder = Callable[[Any, str], Any]
_NONE = type(None)
_SPECS: dict[type, tuple[tuple[str, Decoder], ...]] = {}


def _specs(cls: type[WireRecord]) -> tuple[tuple[str, Decoder], ...]:
    """Each typed field's name and its decoder, built once per class."""
    found = _SPECS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple((f.name, _compile(hints[f.name])) for f in dataclasses.fields(cls)
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


def _mismatch(hint: Any) -> Callable[[Any, str], ModelError]:
    expected = _expected(hint)
    return lambda value, path: ModelError(f"{path}: expected {expected}, got {_kind(value)}")


def _compile(hint: Any) -> Decoder:
    """A function that checks a value against ``hint`` and returns it (lists as tuples,
    modelled objects as records), or raises ModelError naming the path."""
    if hint is Any:
        return lambda value, path: value
    error = _mismatch(hint)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        nullable = _NONE in args
        decoders = [_compile(a) for a in args if a is not _NONE]
        if len(decoders) == 1:
            (one,) = decoders

            def optional(value: Any, path: str) -> Any:
                if value is None:
                    if nullable:
                        return None
                    raise error(value, path)
                try:
                    return one(value, path)
                except ModelError as exc:
                    # A nested key that does not fit is named itself; this one with the union.
                    if str(exc).startswith(f"{path}: "):
                        raise error(value, path) from None
                    raise

            return optional

        def union(value: Any, path: str) -> Any:
            if value is None and nullable:
                return None
            for decoder in decoders:
                try:
                    return decoder(value, path)
                except ModelError:
                    continue
            raise error(value, path)

        return union
    if hint is _NONE or hint in (str, bool, int, float):
        table: dict[Any, tuple[type, ...]] = {_NONE: (_NONE,), str: (str,), bool: (bool,),
                                              int: (int,), float: (int, float)}
        kinds = table[hint]
        no_bool = hint in (int, float)

        def scalar(value: Any, path: str) -> Any:
            if isinstance(value, kinds) and not (no_bool and isinstance(value, bool)):
                return value
            raise error(value, path)

        return scalar
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        item = _compile(item_hint)

        def sequence(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise error(value, path)
            if item_hint is Any:
                return tuple(value)
            return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

        return sequence
    if isinstance(hint, type) and issubclass(hint, WireRecord):
        model = hint

        def record(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise error(value, path)
            return model.from_wire(value, path)

        return record
    if origin is Mapping or hint is Mapping:
        def mapping(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise error(value, path)
            return value

        return mapping
    raise TypeError(f"unsupported annotation {hint!r}")  # a model declared wrongly


def read(cls: type[R], data: JSONObject, path: str = "$") -> R:
    """``cls.from_wire`` without the class's own checks: what an override of ``from_wire``
    calls first (a slotted dataclass cannot use the zero-argument ``super()``)."""
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected an object, got {_kind(data)}")
    values: dict[str, Any] = {}
    for name, decode in _specs(cls):
        if name in data:
            values[name] = decode(data[name], f"{path}.{name}")
    extra = {k: v for k, v in data.items() if k not in values}
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
    # The wire's keys in order; None for a record built in code (an empty object read from
    # the wire is ``()``, and writes back as ``{}``).
    order: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: JSONObject, path: str = "$") -> Self:
        """The record of JSON object ``data``; raises ModelError naming the key that does not
        fit. ``path`` prefixes key paths in messages."""
        return read(cls, data, path)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object, keys in their wire order; ``json.dumps`` of it gives back the
        bytes ``from_wire`` read."""
        names = [name for name, _ in _specs(type(self))]
        out: dict[str, Any] = {}
        if self.order is not None:
            declared = set(names)
            for key in self.order:
                if key in declared:
                    out[key] = _encode(getattr(self, key))
                elif key in self.extra:
                    out[key] = self.extra[key]
            # Fields set in code after reading (a new verdict, say) follow the wire's keys.
            for name in names:
                if name not in out and getattr(self, name) is not None:
                    out[name] = _encode(getattr(self, name))
        else:
            for name in names:
                value = getattr(self, name)
                if value is None and name in self.OMIT_NONE:
                    continue
                out[name] = _encode(value)
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def present(self, name: str) -> bool:
        """Whether key ``name`` was on the wire (``None`` fields may be absent or null)."""
        if self.order is not None:
            return name in self.order
        return getattr(self, name, None) is not None
