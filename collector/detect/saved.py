"""Reading saved detection state back: named fields, typed, and the older positional shape.

Every part of the engine's state saves itself as a dict of named fields (``to_state``) and reads
itself back through ``record`` (``from_state``). State version 2 saved the same fields as
positional lists; ``record`` turns such a list into the same dict by the part's field names, so
a state row written before the change still loads (nothing is converted in the store: the next
save writes the named form). The small typed readers say what a field must be instead of
asserting or ignoring types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def record(data: object, names: Sequence[str]) -> dict[str, Any]:
    """``data`` as a dict by field name: a dict as saved now, or the positional list of state
    version 2 in the order of ``names``. Raises ValueError for anything else."""
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, list | tuple) and len(data) == len(names):
        return dict(zip(names, data, strict=True))
    raise ValueError(f"saved detection state: expected the fields {', '.join(names)}")


def number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"saved detection state: not a number: {value!r}")
    return float(value)


def maybe_number(value: object) -> float | None:
    return None if value is None else number(value)


def integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"saved detection state: not an integer: {value!r}")
    return int(value)


def texts(value: object) -> list[str]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"saved detection state: not a list: {value!r}")
    return [str(item) for item in value]


def numbers(value: object) -> list[float]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"saved detection state: not a list: {value!r}")
    return [number(item) for item in value]


def counts(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError(f"saved detection state: not a mapping: {value!r}")
    return {str(k): integer(v) for k, v in value.items()}


def mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"saved detection state: not a mapping: {value!r}")
    return value
