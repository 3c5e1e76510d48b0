"""The probe's own addresses never reach the disk or the collector, in any spelling, while
every other address (the measured sites', the resolvers') stays in the measurement.

Table tests for the scrubber and the address book, then the whole path on real parts: sites
that echo the probe's address in headers, a body and a certificate, the daemon with its
spool, and the real collector; the test searches every byte written and stored.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import sqlite3
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from collector.store.body import unpack
from probe.core.scrub import SCRUBBED, scrub_matching
from probe.local.privacy import AddressBook, identifying, interface_addresses
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon, write_interfaces
from tests.helpers.servers import serve_app

OWN_V4 = "203.0.113.7"
OWN_V6 = "2001:db8:42:1::7"
OWN_V6_HEX = "20010db8004200010000000000000007"
SIBLING_V6 = "2001:db8:42:1:a1b2:c3d4:e5f6:99"  # a privacy-extension address of the same /64
STRANGER = "198.51.100.23"  # someone else's address: it must survive

SPELLINGS = [
    ("plain", f"client {OWN_V4} connected", f"client {SCRUBBED} connected"),
    ("leading zeros", "203.000.113.007", SCRUBBED),
    ("reverse DNS name", "203-0-113-7.dsl.example.kg", f"{SCRUBBED}.dsl.example.kg"),
    ("underscores", "host_203_0_113_7", f"host_{SCRUBBED}"),
    ("in-addr.arpa", "7.113.0.203.in-addr.arpa", f"{SCRUBBED}.in-addr.arpa"),
    ("inside a longer run", "ns1.203.0.113.7.example", f"ns1.{SCRUBBED}.example"),
    ("IPv4-mapped IPv6", f"::ffff:{OWN_V4}", SCRUBBED),
    ("IPv6 compressed", f"from {OWN_V6}", f"from {SCRUBBED}"),
    ("IPv6 expanded, upper case", "2001:0DB8:0042:0001:0000:0000:0000:0007", SCRUBBED),
    ("IPv6 in brackets with port", f"[{OWN_V6}]:443", f"[{SCRUBBED}]:443"),
    ("IPv6 with zone", f"{OWN_V6}%eth0", SCRUBBED),
    ("IPv6 same /64", SIBLING_V6, SCRUBBED),
    ("a stranger stays", f"{STRANGER} and 2001:db8:43::7", f"{STRANGER} and 2001:db8:43::7"),
    ("a near miss stays", "203.0.113.70 203.0.113.8", "203.0.113.70 203.0.113.8"),
    ("not an address", "version 1.2.3 at 12:34:56", "version 1.2.3 at 12:34:56"),
]


@pytest.fixture
def book() -> AddressBook:
    book = AddressBook(b"test-key" * 4)
    assert book.learn(OWN_V4) and book.learn(OWN_V6)
    return book


@pytest.mark.parametrize(("case", "text", "expected"), SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_every_spelling_of_an_own_address_is_scrubbed(book: AddressBook, case: str, text: str,
                                                      expected: str) -> None:
    assert book.scrub(text) == expected


def test_the_book_keeps_digests_not_addresses(book: AddressBook) -> None:
    assert book.size == 3  # v4, v6 and the v6 /64
    assert OWN_V4 not in repr(vars(book)) and "2001" not in repr(vars(book))
    other = AddressBook(b"another-key" * 3)
    other.learn(OWN_V4)
    assert not AddressBook(b"another-key" * 3).is_own(ipaddress.ip_address(OWN_V4))
    assert other.is_own(ipaddress.ip_address(OWN_V4))


def test_placeholders_are_never_learned() -> None:
    book = AddressBook(b"k" * 32)
    assert book.learn("127.0.0.1") == [] and book.learn("::1") == [] and book.learn("0.0.0.0") == []
    assert book.learn("not an address") == []
    assert book.scrub('"probe_ip": "127.0.0.1"') == '"probe_ip": "127.0.0.1"'


@pytest.mark.parametrize(("address", "expected"), [
    ("192.168.1.20", False), ("10.1.2.3", False), ("fe80::1", False), ("fd00::2", False),
    ("100.64.3.4", True), (OWN_V4, True), ("2a02:6b8::1", True)])
def test_which_interface_addresses_identify_a_volunteer(address: str, expected: bool) -> None:
    assert identifying(ipaddress.ip_address(address)) is expected


def test_interface_addresses_come_from_the_kernel_tables(tmp_path: Path) -> None:
    fib, inet6 = write_interfaces(tmp_path, ("127.0.0.1", OWN_V4, "192.168.1.20"),
                                  (OWN_V6_HEX, "fe800000000000000000000000000001"))
    assert interface_addresses(fib, inet6) == ["127.0.0.1", OWN_V4, "192.168.1.20", OWN_V6,
                                               "fe80::1"]
    assert interface_addresses(str(tmp_path / "missing"), str(tmp_path / "missing")) == []


def certificate(ca: trustme.CA, *identities: str, common_name: str | None = None) -> str:
    der = ssl.PEM_cert_to_DER_cert(
        ca.issue_cert(*identities, common_name=common_name).cert_chain_pems[0].bytes().decode())
    return base64.b64encode(der).decode()


@pytest.mark.parametrize(("identities", "common_name", "scrubbed"), [
    (("router.example.kg", OWN_V4), None, True),  # only as a binary iPAddress in the SAN
    (("router.example.kg", OWN_V6), None, True),
    (("203-0-113-7.cpe.example.kg",), None, True),  # as text in a DNS name
    (("router.example.kg",), OWN_V4, True),  # as text in the subject
    (("kloop.kg", STRANGER), None, False),  # someone else's certificate stays whole
])
def test_certificates_that_name_the_probe_are_removed_whole(
        book: AddressBook, ca: trustme.CA, identities: tuple[str, ...],
        common_name: str | None, scrubbed: bool) -> None:
    data = certificate(ca, *identities, common_name=common_name)
    record = {"tls_handshakes": [{"peer_certificates": [{"data": data, "format": "base64"}],
                                  "x_certificates": [{"sha256": "ab" * 32}]}]}
    text = json.dumps(record, separators=(",", ":"))
    out = json.loads(book.scrub_measurement(text))["tls_handshakes"][0]
    if scrubbed:
        assert out["peer_certificates"][0]["data"] == SCRUBBED
        assert out["x_certificates"][0]["sha256"] == SCRUBBED
    else:
        assert out == record["tls_handshakes"][0]


def test_scrub_matching_is_exact_about_what_it_replaces() -> None:
    own = {ipaddress.ip_address("198.51.100.1")}
    assert scrub_matching("198.51.100.1,198.51.100.10", lambda a: a in own) == \
        f"{SCRUBBED},198.51.100.10"


# --------------------------------------------------------------- the whole path


def echo_app() -> web.Application:
    """A site that tells the visitor its address, as many "what is my IP" pages and some
    blockpages do, in headers and in the page."""

    async def handler(request: web.Request) -> web.Response:
        body = (f"<html><head><title>Your address is {OWN_V4}</title></head><body>"
                f"You are 203-0-113-7.dsl.example.kg, IPv6 {SIBLING_V6}. "
                f"Our resolver is {STRANGER}.</body></html>")
        return web.Response(text=body, content_type="text/html",
                            headers={"X-Client-Address": OWN_V4, "X-Client-V6": OWN_V6,
                                     "Via": f"1.1 proxy ({STRANGER})"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


def spellings_of_own() -> list[bytes]:
    return [s.encode() for s in (OWN_V4, "203-0-113-7", "7.113.0.203", OWN_V6,
                                 "2001:0db8:0042:0001", SIBLING_V6)]


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


async def test_no_byte_on_disk_or_at_the_collector_carries_the_probe_address(
        tmp_path: Path, ca: trustme.CA, ca_file: str, collector_config: Any) -> None:
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-privacy")
    await collector.start()
    # A certificate naming the probe's address: what a MITM box or a misconfigured CPE shows.
    cert_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("203-0-113-7.cpe.example.kg", OWN_V4,
                  common_name=OWN_V4).configure_cert(cert_context)
    interfaces = write_interfaces(tmp_path, ("127.0.0.1", OWN_V4), (OWN_V6_HEX,))
    try:
        async with serve_app(echo_app()) as http_port, \
                serve_app(echo_app(), cert_context) as https_port:
            targets = [{"url": f"http://localhost:{http_port}/"},
                       {"url": f"https://localhost:{https_port}/"}]
            config = loopback_config(tmp_path, collector.base, token, targets, http_port,
                                     ca_file=ca_file, control_url=collector.base)
            daemon, db, spool = await make_daemon(config, tmp_path, interfaces=interfaces)
            # An error string that carries the address (the engine scrubs its own
            # unknown_failure messages; this layer must not depend on it).
            await daemon.start()
            await daemon.record({
                "measurement_uid": "20260101000000.000000_KG_web_connectivity_00000000000001",
                "measurement_start_time": "2026-01-01 00:00:00", "test_name": "web_connectivity",
                "input": "http://example.kg/", "probe_cc": "KG", "probe_asn": "AS8449",
                "probe_ip": "127.0.0.1",
                "test_keys": {"requests": [{"failure": f"unknown_failure: bind {OWN_V4}:0"}],
                              "analysis": {"verdict": "inconclusive"}}})
            await daemon.shutdown()
            await daemon.run_once()
            await db.close()
    finally:
        await collector.stop()

    assert len(spool.recorded) == 4  # the synthetic one, the ladder, two sites
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("spool.sqlite*"))
    with sqlite3.connect(collector_config.database) as store:
        # Bodies are stored compressed: the address must be absent from what they say.
        bodies = [unpack(row[0]) for row in store.execute("SELECT body FROM measurements")]
        heartbeats = [unpack(row[0]) for row in store.execute("SELECT body FROM heartbeats")]
    assert len(bodies) == 4
    uploaded = "\n".join(bodies + heartbeats).encode()
    for spelling in spellings_of_own():
        assert spelling not in on_disk, spelling
        assert spelling.lower() not in uploaded.lower(), spelling

    measurements = {m["input"]: m for m in map(json.loads, bodies)}
    plain = measurements[targets[0]["url"]]["test_keys"]["requests"][0]["response"]
    assert plain["headers"]["X-Client-Address"] == SCRUBBED
    assert plain["headers"]["X-Client-V6"] == SCRUBBED
    assert plain["x_title"] == f"Your address is {SCRUBBED}"
    assert f"You are {SCRUBBED}.dsl.example.kg, IPv6 {SCRUBBED}." in plain["body"]
    # Everything that is not the probe's stays: the stranger, the sites' addresses.
    assert STRANGER in plain["body"] and STRANGER in plain["headers"]["Via"]
    secure = measurements[targets[1]["url"]]["test_keys"]
    handshake = secure["tls_handshakes"][0]
    described = handshake["x_certificates"][0]
    assert described["subject"] == SCRUBBED
    assert described["dns_names"] == [f"{SCRUBBED}.cpe.example.kg"]
    assert described["issuer"] and described["issuer"] != SCRUBBED  # the evidence stays
    # The DER itself (base64, where text replacement cannot see) and its fingerprint go.
    assert handshake["peer_certificates"][0]["data"] == SCRUBBED
    assert described["sha256"] == SCRUBBED
    assert all(t["ip"] == "127.0.0.1" for t in secure["tcp_connect"])
    synthetic = measurements["http://example.kg/"]["test_keys"]["requests"][0]["failure"]
    assert synthetic == f"unknown_failure: bind {SCRUBBED}:0"
    assert all(m["probe_ip"] == "127.0.0.1" for m in measurements.values())
    assert not any(OWN_V4 in s for m in measurements.values() for s in all_strings(m))
