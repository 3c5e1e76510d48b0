"""Hostile Location values, a hostile TLS server and a DNS server flooding late answers,
against the real ``probe check`` process: the process always prints its JSON measurement."""

from __future__ import annotations

import trustme

from probe.core import failures
from probe.netx import dns
from tests.helpers import hostile_servers as servers
from tests.helpers.servers import server_context
from tests.probe.hostile.run import requests_of, run_check
from tests.probe.hostile.test_http_hostile import assert_bounded

BAD_LOCATIONS = [
    (b"http://[::1/evil", failures.HTTP_INVALID_REDIRECT_URL),
    (b"http://host:99999/", failures.HTTP_INVALID_REDIRECT_URL),
    (b"http://host:-1/", failures.HTTP_INVALID_REDIRECT_URL),
    (b"http://" + b"a" * 20000 + b"/", failures.HTTP_INVALID_REDIRECT_URL),
    (b"ftp://example.org/", failures.HTTP_INVALID_REDIRECT),
    (b"javascript:alert(1)", failures.HTTP_INVALID_REDIRECT),
    (b"http://", failures.HTTP_INVALID_REDIRECT),
    (b"http:///path", failures.HTTP_INVALID_REDIRECT),
]


async def test_bad_location_values_end_the_chain_with_a_failure() -> None:
    for location, failure in BAD_LOCATIONS:
        async with servers.serve(servers.redirect(location)) as served:
            checked = await run_check(served.url())
        assert_bounded(checked)
        [request] = requests_of(checked)
        assert request["response"]["code"] == 302, location
        assert request["failure"] == failure, location


async def test_redirect_to_another_loopback_port_is_followed_from_a_loopback_start() -> None:
    """The policy's other half: a lab or private deployment redirects within its own space."""
    async with servers.serve(servers.page(b"second hop")) as second:
        location = second.url().encode()
        async with servers.serve(servers.redirect(location)) as first:
            checked = await run_check(first.url())
    assert_bounded(checked)
    final, redirect = requests_of(checked)
    assert redirect["x_redirect_to"] == second.url()
    assert final["failure"] is None and final["response"]["x_title"] == "second hop"


async def test_hostile_tls_server_sends_endless_headers_inside_tls(tmp_path: object) -> None:
    ca = trustme.CA()
    ca_file = f"{tmp_path}/ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    context = server_context(ca, "127.0.0.1")
    async with servers.serve(servers.endless_header_lines(), context=context) as served:
        checked = await run_check(served.url("https"), "--ca-file", ca_file)
    assert_bounded(checked)
    [handshake] = checked.keys["tls_handshakes"]
    assert handshake["failure"] is None
    [request] = requests_of(checked)
    assert request["failure"] == failures.HTTP_TOO_MANY_HEADERS


async def test_hostile_tls_server_answers_the_client_hello_with_garbage() -> None:
    async with servers.serve(servers.garbage(), read_request=False) as served:
        checked = await run_check(served.url("https"))
    assert_bounded(checked)
    [handshake] = checked.keys["tls_handshakes"]
    assert failures.is_failure_string(handshake["failure"])
    assert handshake["failure"] in (failures.SSL_FAILED_HANDSHAKE, failures.EOF_ERROR,
                                    failures.CONNECTION_RESET)
    assert requests_of(checked) == []


async def test_flood_of_late_dns_answers_is_counted_not_kept() -> None:
    async with servers.serve(servers.page(b"flooded")) as site:
        with servers.FloodingDNS("127.0.0.1", seconds=1.5) as resolver:
            checked = await run_check(f"http://flood.example:{site.port}/",
                                      "--resolver", f"127.0.0.1:{resolver.port}")
            sent = resolver.sent
    assert_bounded(checked)
    udp = [q for q in checked.keys["queries"] if q["engine"] == "udp"]
    assert {q["query_type"] for q in udp} == {"A", "AAAA"}
    assert max(q["x_late_answers_total"] for q in udp) > 1000, sent
    for query in udp:
        kept = len(query["x_late_answers"])
        assert kept == min(query["x_late_answers_total"], dns.MAX_LATE_ANSWERS)
        assert query["x_late_answers_dropped"] == query["x_late_answers_total"] - kept
        assert query["x_late_answers_bytes"] >= query["x_late_answers_total"] * 20
    udp_a = next(q for q in udp if q["query_type"] == "A")
    assert udp_a["answers"][0]["ipv4"] == "127.0.0.1"
    # Forged late answers are still evidence of injection.
    assert checked.keys["analysis"]["mechanism"] == "injected"
