"""Every spelling of an address is scrubbed, on hypothesis-generated addresses and spellings.

The same matcher serves the probe (its address book) and the collector (the submitter's
address, ``scrub_address``), so both are checked here: an own address written any way a
page, a header, an error message or a reverse DNS name may write it disappears, and another
address next to it stays exactly as it was.
"""

from __future__ import annotations

import ipaddress
import json

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from probe.core.scrub import SCRUBBED, same_address, scrub_address, scrub_document, scrub_ips
from probe.local.privacy import AddressBook

V4 = st.builds(ipaddress.IPv4Address, st.integers(1 << 24, (1 << 32) - 1))
V6 = st.builds(ipaddress.IPv6Address, st.integers(1 << 100, (1 << 128) - 1))
# What may surround an address in text without being part of the spelling itself (a hex
# letter right after "2001:db8::" would be part of the address).
BEFORE = st.sampled_from(["", " ", "client ", "(", '"', "=", "/", ",", "<b>", ": ", "@"])
AFTER = st.sampled_from(["", " ", ")", '"', "/", ",", "</b>", " ok", "; "])


def _case(draw: st.DrawFn, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)


@st.composite
def v4_spellings(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    octets = str(address).split(".")
    kind = draw(st.sampled_from([
        "plain", "padded", "dashes", "underscores", "in-addr", "host-dots", "host-dashes",
        "mapped-hex", "mapped-dotted", "mapped-padded", "mapped-expanded", "nat64", "6to4"]))
    value = int(address)
    high, low = f"{value >> 16:x}", f"{value & 0xFFFF:x}"
    match kind:
        case "plain":
            return str(address)
        case "padded":
            return ".".join(o.zfill(draw(st.integers(len(o), 3))) for o in octets)
        case "dashes":
            return "-".join(octets)
        case "underscores":
            return "_".join(octets)
        case "in-addr":
            return _case(draw, ".".join(reversed(octets)) + ".in-addr.arpa")
        case "host-dots":
            return f"{str(address)}.{draw(st.sampled_from(['example.net', 'dyn.isp.kg']))}"
        case "host-dashes":
            prefix = draw(st.sampled_from(["", "ip-", "host-", "dsl-"]))
            order = octets if draw(st.booleans()) else octets[::-1]
            return f"{prefix}{'-'.join(order)}.{draw(st.sampled_from(['example.net', 'x.kz']))}"
        case "mapped-hex":
            return _case(draw, f"::ffff:{high}:{low}")
        case "mapped-dotted":
            return _case(draw, f"::ffff:{address}")
        case "mapped-padded":
            return f"::ffff:{'.'.join(o.zfill(3) for o in octets)}"
        case "mapped-expanded":
            return _case(draw, ipaddress.IPv6Address(f"::ffff:{address}").exploded)
        case "nat64":
            return f"64:ff9b::{address}"
        case _:
            return str(ipaddress.IPv6Address(f"2002:{high}:{low}::1"))


@st.composite
def v6_spellings(draw: st.DrawFn, address: ipaddress.IPv6Address) -> str:
    kind = draw(st.sampled_from([
        "compressed", "exploded", "brackets-port", "zone", "ip6.arpa", "dashes-full",
        "dashes-compressed", "percent"]))
    match kind:
        case "compressed":
            return _case(draw, address.compressed)
        case "exploded":
            return _case(draw, address.exploded)
        case "brackets-port":
            return f"[{_case(draw, address.compressed)}]:{draw(st.integers(1, 65535))}"
        case "zone":
            return f"{address.compressed}%{draw(st.sampled_from(['eth0', 'wlan0', '2']))}"
        case "ip6.arpa":
            return _case(draw, address.reverse_pointer)
        case "dashes-full":
            return f"{address.exploded.replace(':', '-')}.ip6.example.net"
        case "dashes-compressed":
            prefix = draw(st.sampled_from(["", "host-", "cpe-"]))
            return f"{prefix}{address.compressed.replace(':', '-')}.example.net"
        case _:
            return "https://x/?ip=" + address.compressed.replace(":", "%3A")


@st.composite
def own_and_stranger(draw: st.DrawFn) -> tuple[str, str, str]:
    """(own address, one spelling of it in context, a stranger's address)."""
    if draw(st.booleans()):
        own: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(V4)
        spelling = draw(v4_spellings(own))
        stranger: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(V4)
    else:
        own = draw(V6)
        spelling = draw(v6_spellings(own))
        stranger = draw(V6)
    assume(stranger != own)
    text = draw(BEFORE) + spelling + draw(AFTER)
    return str(own), text, str(stranger)


@settings(max_examples=400, deadline=None)
@given(case=own_and_stranger())
def test_the_collector_scrubs_every_spelling_of_the_submitter(
        case: tuple[str, str, str]) -> None:
    own, text, stranger = case
    scrubbed = scrub_address(f"{text} and {stranger}", own)
    assert SCRUBBED in scrubbed.split(" and ")[0], (text, scrubbed)
    # Nothing left that still spells it: scrubbing again changes nothing.
    assert scrub_address(scrubbed, own) == scrubbed
    assert scrubbed.endswith(f" and {stranger}")


@settings(max_examples=300, deadline=None)
@given(case=own_and_stranger())
def test_the_probe_scrubs_every_spelling_of_its_own_address(
        case: tuple[str, str, str]) -> None:
    own, text, stranger = case
    book = AddressBook(b"k" * 32)
    assume(book.learn(own))  # loopback is never learned: it is the format's placeholder
    # The book also scrubs its IPv6 /64 (privacy addresses change, the prefix stays).
    assume(ipaddress.ip_address(own).packed[:8] != ipaddress.ip_address(stranger).packed[:8])
    scrubbed = book.scrub(f"{text} and {stranger}")
    assert SCRUBBED in scrubbed.split(" and ")[0], (text, scrubbed)
    assert scrubbed.endswith(f" and {stranger}")


@settings(max_examples=300, deadline=None)
@given(case=own_and_stranger())
def test_error_messages_lose_every_address(case: tuple[str, str, str]) -> None:
    _own, text, stranger = case
    scrubbed = scrub_ips(f"failed: {text} and {stranger}")
    assert SCRUBBED in scrubbed.split(" and ")[0]
    assert scrubbed.endswith(f" and {SCRUBBED}") or scrubbed.endswith(f" and [{SCRUBBED}]")


@settings(max_examples=200, deadline=None)
@given(case=own_and_stranger(),
       escape=st.sampled_from(["\x00", "\x1f", "é", "€", "\n", "\\", '"']))
def test_documents_are_scrubbed_string_by_string_whatever_the_escapes(
        case: tuple[str, str, str], escape: str) -> None:
    """A JSON escape next to the address neither hides it nor is cut by the replacement."""
    own, text, _ = case
    predicate = same_address(own)
    assert predicate is not None
    document = {"keys": [{"failure": escape + text}], escape + text: 1}
    scrubbed, changed = scrub_document(document, predicate)
    assert changed
    for serialized in (json.dumps(scrubbed), json.dumps(scrubbed, ensure_ascii=False)):
        assert json.loads(serialized) == scrubbed
    assert SCRUBBED in scrubbed["keys"][0]["failure"]
    assert all(SCRUBBED in key for key in scrubbed if key != "keys")


def test_lookalikes_stay() -> None:
    own = "203.0.113.7"
    for text in ("203.0.113.70", "203.0.113.8", "2203.0.113.7", "1.203.0.113", "203.0.113",
                 "::ffff:203.0.113.8", "version 12:34:56", "2024-05-01", "cafe-babe"):
        assert scrub_address(text, own) == text
