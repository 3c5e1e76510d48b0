"""Load plain YAML/JSON data into frozen dataclasses, failing with the key path.

Both the probe and the collector read their configuration through this module so that every
config error looks the same to an operator: ``targets[3].url: not an http(s) URL``. The rules:

* defaults first, then the file's values (a missing key keeps the dataclass default);
* unknown keys are errors (a typo must not silently fall back to a default);
* every value is checked against the field's type; a field may add a validator with
  ``field(metadata={"check": fn})`` where ``fn(value) -> str | None`` returns a message on error.

It knows only the types our configs use: ``str``, ``int``, ``float``, ``bool``, ``X | None``,
``Literal[...]``, ``tuple[X, ...]``, ``dict[str, X]`` and nested frozen dataclasses. Durations may
be written as numbers of seconds or strings such as ``"250ms"``, ``"5s"``, ``"2m"``, ``"1h"``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

Check = Callable[[Any], "str | None"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message starts with its path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like ``"250ms"``; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError("not a duration (use seconds or a string like '5s', '250ms', '2m')")


def duration_field(default: float, check: Check | None = None) -> Any:
    """A float field that also accepts duration strings in the file."""
    return dataclasses.field(default=default, metadata={"duration": True, "check": check})


def checked(default: Any, check: Check) -> Any:
    """A field with a validator; for mutable defaults pass a tuple or a frozen dataclass."""
    return dataclasses.field(default=default, metadata={"check": check})


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def build(cls: type[T], data: object, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), validating every key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping, got {_kind(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if not isinstance(key, str) or key not in fields:
            raise ConfigError(join(path, str(key)), "unknown key")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        field_path = join(path, name)
        if name in data:
            value = _convert(hints[name], data[name], field_path, f.metadata)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise ConfigError(field_path, "required key is missing")
        check = f.metadata.get("check")
        if check is not None and name in data:
            message = check(value)
            if message:
                raise ConfigError(field_path, message)
        values[name] = value
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(path, str(exc)) from exc


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _convert(tp: Any, value: object, path: str, meta: Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            if len(args) != len(get_args(tp)):
                return None
            raise ConfigError(path, "must not be null")
        return _convert(args[0], value, path, meta)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(path, f"must be one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"expected a list, got {_kind(value)}")
        item_type = get_args(tp)[0]
        return tuple(_convert(item_type, v, join(path, i), {}) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {_kind(value)}")
        key_type, item_type = get_args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(join(path, str(k)), "keys must be strings")
            out[k] = _convert(item_type, v, join(path, k), {})
        return types.MappingProxyType(out)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, path)
    if tp is float and meta.get("duration"):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(path, str(exc)) from exc
        if seconds < 0:
            raise ConfigError(path, "must not be negative")
        return seconds
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {_kind(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_kind(value)}")
        return value
    if tp is typing.Any:
        return value
    raise ConfigError(path, f"unsupported type {tp!r}")  # a bug in the schema, not the file


def read_yaml(path: str | Path) -> object:
    """Parse a YAML file; syntax errors become ConfigError naming the file and line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read {file}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError("", f"{file}{where}: invalid YAML") from exc


def load(cls: type[T], path: str | Path) -> T:
    """Read ``path`` and build ``cls`` from it."""
    return build(cls, read_yaml(path))


# Validators shared by both configs.


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be positive"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def is_country_code(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) == 2 and value.isascii() and value.isupper()
    return None if ok and value.isalpha() else "not a two-letter upper-case country code"


def is_asn(value: Any) -> str | None:
    if value is None or re.fullmatch(r"AS[1-9]\d{0,9}", value):
        return None
    return "not an ASN like AS1234"


def is_http_url(value: Any) -> str | None:
    return None if re.match(r"^https?://[^/\s]+", value or "") else "not an http(s) URL"


def is_host_port(value: Any) -> str | None:
    host, sep, port = str(value).rpartition(":")
    ok = bool(sep) and bool(host) and port.isdigit() and 0 < int(port) < 65536
    return None if ok else "not HOST:PORT"
