"""``parse_json`` (orjson with the standard library behind it) against the reference, the
standard library's strict parse: the same value, of the same types, or the same refusal with
the same reason, for any body."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.api.validate import Invalid, _parse_standard, parse_json, serialize


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (``1 == 1.0`` and ``0.0 == -0.0`` are not
    the same JSON); a loop, not recursion, for bodies nested hundreds deep."""
    pairs = [(a, b)]
    while pairs:
        x, y = pairs.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            if list(x) != list(y):
                return False
            pairs.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            pairs.extend(zip(x, y, strict=True))
        elif isinstance(x, float):
            if not (x == y and math.copysign(1, x) == math.copysign(1, y)):
                return False
        elif x != y:
            return False
    return True


def outcome(parse: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", parse(raw)
    except Invalid as exc:
        return "refused", exc.reason


def check(raw: bytes) -> None:
    got, reference = outcome(parse_json, raw), outcome(_parse_standard, raw)
    assert got[0] == reference[0], (raw[:200], got, reference)
    if got[0] == "value":
        assert same(got[1], reference[1]), raw[:200]
    else:
        assert got[1] == reference[1], raw[:200]


# Integers and floats at and around every edge: 64 bits, 2**64, doubles' range and precision.
EDGES = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**18, 10**19 - 1,
         10**19, -(10**18), 10**30]
NUMBER_TEXTS = [str(n) for n in EDGES] + [
    "1e308", "1.7976931348623157e308", "1.7976931348623159e308", "1e309", "-1e999",
    "4.9e-324", "1e-400", "-0", "-0.0", "0.1", "1E2", "1e+2", "12345678901234567890.5",
    "0.12345678901234567890123", "1.2345678901234567890e5", "123456789012345678e1",
    "01", "1.", ".5", "+1", "0x10", "NaN", "-Infinity", "1_000"]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@pytest.mark.parametrize("number", NUMBER_TEXTS)
@pytest.mark.parametrize("shape", ["{}", '{{"a":{}}}', "[1,{}]", "[ {}]", "{{\"a\": -{}}}",
                                   '{{"s":"x {}"}}', '{{"s":"{}"}}'])
def test_numbers_at_every_edge_and_place(number: str, shape: str) -> None:
    check(shape.format(number).encode())


@given(JSON)
@settings(max_examples=400)
def test_any_json_value_parses_as_the_reference_does(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    check(text.encode())
    check(json.dumps(value).encode())  # with every non-ASCII character escaped


@given(JSON, st.data())
@settings(max_examples=400)
def test_damaged_bodies_are_refused_with_the_reference_reason(value: Any, data: Any) -> None:
    raw = bytearray(json.dumps({"measurements": [value]}, ensure_ascii=False).encode())
    position = data.draw(st.integers(0, len(raw)))
    damage = data.draw(st.sampled_from([b"", b"\xff", b"\xed\xa0\x80", b"NaN", b"\\ud800",
                                        b'"', b"]", b"}", b"1" * 25, b"\x00", b"\xef\xbb\xbf",
                                        b"-", b"e999"]))
    cut = data.draw(st.integers(0, 3))
    raw[position:position + cut] = damage
    check(bytes(raw))


@pytest.mark.parametrize("raw", [
    b'"\\ud800"', b'{"a":"\\udc00"}', b"\xef\xbb\xbf{}", b"", b" ", b"{} x", b'{"a":1,"a":2}',
    b"[" * 500 + b"]" * 500, b"[" * 2000 + b"]" * 2000, b'{"a":"\x01"}', b'\t{"a" :\n1}\r',
    b"12345678901234567890", b"-12345678901234567890", b"1234567890123456789", b"[1]" + b" " * 5,
])
def test_bodies_orjson_and_the_standard_library_see_differently(raw: bytes) -> None:
    check(raw)


def test_serialize_writes_the_same_values_as_the_standard_library() -> None:
    document = {"f": [1e16, 1.5e-07, 0.1, 1e300, -0.0, 5e-324], "i": [2**63 - 1, -(2**63)],
                "s": "é\u2028\x7f\x00\n\"\\/ 🙂", "n": None, "b": [True, False], "e": {}}
    ours = serialize(document)
    reference = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    assert same(json.loads(ours), json.loads(reference))
    assert ours.replace(b"e-7", b"e-07") == reference  # the one spelling that differs


def test_serialize_refuses_a_lone_surrogate_as_encoding() -> None:
    with pytest.raises(Invalid) as caught:
        serialize({"s": "\ud800"})
    assert caught.value.reason == "encoding"
