"""``scrub_document`` gives exactly what scrubbing each string on its own gives.

``scrub_document`` runs the matcher only on the strings that the scans of all the strings
joined together point at (``probe.core.scrub._scrub_texts``). The reference here is the walk it
replaced, string by string, kept verbatim; both run on hypothesis-generated documents full of
addresses in every spelling the matcher knows, glued to digits, letters and newlines, with
strangers' addresses beside them, under the collector's predicate (one address), the probe's
(its address book) and the error messages' (every address). Then on the realistic
measurements of the benchmarks, with and without the submitter's address planted in them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.collector_scale import Generator, template
from probe.core.scrub import (
    _FOUR_NIBBLES,
    _NEEDED,
    _RUN,
    _SEVEN_DASHES,
    _SIX_COLONS,
    SCRUBBED,
    Predicate,
    _every,
    same_address,
    scrub_document,
    scrub_matching,
)
from probe.local.privacy import AddressBook


def reference(value: Any, is_own: Predicate) -> tuple[Any, bool]:
    """The string-by-string walk ``scrub_document`` was before its joined-text scans."""
    changed = False
    seen: dict[str, str] = {}

    def walk(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            out = seen.get(item)
            if out is None:
                out = seen[item] = scrub_matching(item, is_own)
            if out != item:
                changed = True
            return out
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {walk(k): binary(v) if k == "body" and is_base64(v) else walk(v)
                    for k, v in item.items()}
        return item

    def binary(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal changed
        try:
            text = base64.b64decode(body["data"], validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return {walk(k): walk(v) for k, v in body.items()}
        out = scrub_matching(text, is_own)
        if out == text:
            return body
        changed = True
        return {**body, "data": base64.b64encode(out.encode("latin-1")).decode("ascii")}

    result = walk(value)
    return (result, True) if changed else (value, False)


def is_base64(value: Any) -> bool:
    return isinstance(value, dict) and value.get("format") == "base64" and \
        isinstance(value.get("data"), str)


# Addresses near one another, so that strangers share prefixes and octets with the own one.
V4 = st.sampled_from(["203.0.113.7", "203.0.113.70", "10.0.0.1", "198.51.100.23", "1.2.3.4",
                      "7.113.0.203", "127.0.0.1", "255.255.255.255"])
V6 = st.sampled_from(["2001:db8::7", "2001:db8:0:42::1", "fe80::1", "2a02:6b8::2:242",
                      "2001:db8:85a3::8a2e:370:7334", "::1", "2001:db8::70"])


def _teredo(v4: str) -> str:
    client = int(ipaddress.IPv4Address(v4)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address(0x2001_0000_4136_E378_8000_63BF << 32 | client))


def v4_spellings(address: str) -> list[str]:
    octets = address.split(".")
    value = int(ipaddress.IPv4Address(address))
    high, low = f"{value >> 16:x}", f"{value & 0xFFFF:x}"
    return [
        address, ".".join(o.zfill(3) for o in octets), "-".join(octets), "_".join(octets),
        ".".join(reversed(octets)) + ".in-addr.arpa", f"host-{'-'.join(octets)}.isp.kg",
        f"ip-{'-'.join(reversed(octets))}.x.kz", f"ns1.{address}.example.net",
        f"::ffff:{high}:{low}", f"::FFFF:{address}",
        f"::ffff:{'.'.join(o.zfill(3) for o in octets)}",
        ipaddress.IPv6Address(f"::ffff:{address}").exploded, f"64:ff9b::{address}",
        str(ipaddress.IPv6Address(f"2002:{high}:{low}::1")), _teredo(address),
        f"::ffff:{high}:{low}".replace(":", "%3A"), f"--ffff-{high}-{low}.example.net",
    ]


def v6_spellings(address: str) -> list[str]:
    parsed = ipaddress.IPv6Address(address)
    return [
        parsed.compressed, parsed.exploded, parsed.exploded.upper(), f"[{parsed}]:443",
        f"{parsed}%eth0", parsed.reverse_pointer, parsed.reverse_pointer.upper(),
        f"{parsed.exploded.replace(':', '-')}.ip6.example.net",
        f"cpe-{parsed.compressed.replace(':', '-')}.example.net",
        "https://x/?ip=" + parsed.compressed.replace(":", "%3A"),
        "https://x/?ip=" + parsed.compressed.replace(":", "%3a"),
    ]


@st.composite
def spelling(draw: st.DrawFn) -> str:
    address = draw(V4 | V6)
    if ":" in address:
        return draw(st.sampled_from(v6_spellings(address)))
    return draw(st.sampled_from(v4_spellings(address)))


GLUE = st.sampled_from(["", "", " ", "\n", "1", "12", "0.", "a", "f", "x", ":", "::", ".",
                        "-", "--", "_", "%3A", "%", "[", "]", "é", "Бишкек", "2026-01-01",
                        "12:30:45", "\n\n", "0\n", "\n1.",
                        # An ip6.arpa run without a digit, for the nibble scan alone.
                        "a.b.c.d.e.f.a.b.c.d.e.f.a.b.c.d",
                        # A NUL: the joined text is then scanned string by string.
                        "\x00"])
FRAGMENT = spelling() | GLUE | st.text(alphabet="0123456789abcdef.:-_%\n ", max_size=12)
TEXT = st.lists(FRAGMENT, max_size=6).map("".join)
KEY = st.sampled_from(["body", "data", "format", "ip", "t0", "failure"]) | TEXT


def _body(text: str) -> dict[str, Any]:
    return {"format": "base64", "data": base64.b64encode(text.encode()).decode("ascii")}


# A body whose data is not base64 is walked as a plain object: its keys and values too.
BODY = (TEXT.map(_body)
        | st.builds(lambda data, rest, more: {**more, "format": "base64", "data": data,
                                              "body": rest},
                    st.sampled_from(["!!", "abc", "é"]), TEXT.map(_body),
                    st.dictionaries(TEXT, TEXT, max_size=2)))
SCALAR = TEXT | st.integers() | st.none() | st.booleans() | st.floats(allow_nan=False)
DOCUMENT = st.recursive(
    SCALAR,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(KEY, children | BODY, max_size=4)
                      | st.builds(lambda body, rest: {**rest, "body": body}, BODY,
                                  st.dictionaries(KEY, children, max_size=3))),
    max_leaves=20)


def _book(own: str) -> Predicate:
    book = AddressBook(b"k" * 32)
    book.learn(own)
    return book.is_own


@settings(max_examples=500, deadline=None)
@given(document=DOCUMENT, own=V4 | V6, kind=st.sampled_from(["collector", "probe", "every"]))
def test_documents_are_scrubbed_exactly_as_string_by_string(
        document: Any, own: str, kind: str) -> None:
    predicate = {"collector": same_address, "probe": _book, "every": lambda _: _every}[kind](own)
    assert predicate is not None
    expected, expected_changed = reference(document, predicate)
    got, changed = scrub_document(document, predicate)
    assert (got, changed) == (expected, expected_changed)
    if not changed:
        assert got is document


@settings(max_examples=500, deadline=None)
@given(text=TEXT)
def test_a_text_the_scans_pass_over_is_left_as_it_is(text: str) -> None:
    """What makes skipping a string exact: ``_NEEDED`` holds for every text any pass of the
    matcher changes, even when every address is to go."""
    if not any(p.search(text) for p in _NEEDED):
        assert scrub_matching(text, _every) == text


# What each pass of the matcher needs to change a text: its precheck, or (the last) its pattern.
NEEDS = [lambda t: "::" in t, _SIX_COLONS.search, lambda t: "%3" in t, lambda t: "--" in t,
         _SEVEN_DASHES.search, _FOUR_NIBBLES.search, _RUN.search]


@settings(max_examples=1000, deadline=None)
@given(text=TEXT)
def test_what_every_pass_of_the_matcher_needs_is_scanned_for(text: str) -> None:
    if any(needs(text) for needs in NEEDS):
        assert any(p.search(text) for p in _NEEDED)


@pytest.mark.parametrize("own", ["203.0.113.7", "2001:db8::7"])
def test_strings_that_begin_with_the_address_one_after_another(own: str) -> None:
    """Each scan resumes right where the next string begins, so one that starts with its
    match is not skipped."""
    predicate = same_address(own)
    assert predicate is not None
    spellings = v4_spellings(own) if "." in own else v6_spellings(own)
    for spelled in spellings:
        document = [f"x{spelled}", spelled, f"{spelled}\n", spelled + "1"]
        expected = reference(document, predicate)
        assert scrub_document(document, predicate) == expected
        assert expected[0][1] != spelled, spelled


@pytest.mark.parametrize("own", ["203.0.113.7", "2001:db8::7"])
def test_long_pages_beside_short_strings(own: str) -> None:
    """Texts longer than the joined scans take (pages) go to the matcher whole."""
    predicate = same_address(own)
    assert predicate is not None
    page = "<p>Бишкек 2026-01-01 12:30 news</p>\n" * 400
    spellings = v4_spellings(own) if "." in own else v6_spellings(own)
    for spelled in spellings:
        for document in (
            {"body": page + spelled, "ip": spelled, "other": page},
            {"body": page, "ip": f"at {spelled}", "nul": "\x00"},
            {"body": spelled + page, "binary": _body(page + spelled)},
        ):
            expected = reference(document, predicate)
            assert expected[1], spelled
            assert scrub_document(document, predicate) == expected
    assert scrub_document({"body": page, "ip": "x"}, predicate)[1] is False


def test_keys_that_are_not_strings_are_walked_string_by_string() -> None:
    predicate = same_address("203.0.113.7")
    assert predicate is not None
    document = {1: "at 203.0.113.7", "a": {2: ["203.0.113.7"]}}
    assert scrub_document(document, predicate) == (
        {1: f"at {SCRUBBED}", "a": {2: [SCRUBBED]}}, True)


@pytest.fixture(scope="module")
def measurements() -> list[dict[str, Any]]:
    """The benchmarks' measurements: a real probe's, of a 4 KiB page, varied."""
    generator = Generator(asyncio.run(template()))
    return [json.loads(generator.document(i, f"scrubtest{i:06d}")[0]) for i in range(40)]


SUBMITTER = "203.0.113.7"


def test_a_measurement_without_the_submitter_is_returned_itself(
        measurements: list[dict[str, Any]]) -> None:
    predicate = same_address(SUBMITTER)
    assert predicate is not None
    for m in measurements:
        got, changed = scrub_document(m, predicate)
        assert got is m and not changed


def _plant(m: dict[str, Any], spelled: str) -> dict[str, Any]:
    """``m`` with ``spelled`` in a failure (before a newline), at the end of the page and in
    a header's name."""
    planted: dict[str, Any] = json.loads(json.dumps(m))
    planted["test_keys"]["tcp_connect"][0]["status"]["failure"] = f"from {spelled}\n"
    response = planted["test_keys"]["requests"][0]["response"]
    response["body"] = response["body"] + f"<p>your address: {spelled}</p>"
    response["headers"][f"X-Seen-{spelled}"] = "1"
    return planted


@pytest.mark.parametrize("spelled", [SUBMITTER, "203-0-113-7", "7.113.0.203.in-addr.arpa",
                                     "::ffff:cb00:7107", "2002:cb00:7107::1"])
def test_the_submitter_planted_in_a_measurement_is_replaced_there_only(
        measurements: list[dict[str, Any]], spelled: str) -> None:
    predicate = same_address(SUBMITTER)
    assert predicate is not None
    replaced = scrub_matching(spelled, predicate)
    assert SCRUBBED in replaced
    for m in measurements[:10]:
        planted = _plant(m, spelled)
        got, changed = scrub_document(planted, predicate)
        assert changed and (got, changed) == reference(planted, predicate)
        # Replaced where it was planted, everything else as it was.
        assert got == _plant(m, replaced)
