"""Web connectivity end to end on loopback, one test per failure class, real parts only.

Real aiohttp sites (trustme certificates), real dnspython DNS servers (an honest one for the
control, an "ISP" one for the probe), a middlebox that censors only the probe's connections,
and the real collector application as the control vantage. Each test checks the records
(failure and operation at the step that failed), Kuzot's verdict and OONI's keys.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from collector.app import create_app
from collector.config import Auth, CollectorConfig, Control
from probe.core import failures
from probe.nettests.control_client import ControlClient
from probe.nettests.web_connectivity import measure as web_check
from tests.helpers.loopback import (
    DOMAIN,
    PROBE_SOURCE,
    SITE_IP,
    UPSTREAM_IP,
    middlebox,
    shared_port,
    stub_lookup,
)
from tests.helpers.servers import (
    NOERROR,
    NXDOMAIN,
    PAGE,
    SERVFAIL,
    dns_server,
    page_app,
    serve_app,
)

Answer = list[tuple[int, list[str]]]
SPOOF_IP = "127.0.0.20"  # nothing listens here
BOGON_IP = "127.0.0.53"


@dataclass
class Network:
    port: int
    isp_port: int
    control_base: str
    ca_file: str
    isp: dict[tuple[str, str], Answer] = field(default_factory=dict)

    def options(self, **overrides: Any) -> web_check.WebOptions:
        base = web_check.WebOptions(
            dns_timeout=1.0, connect_timeout=1.0, tls_timeout=1.0, http_timeout=2.0,
            dns_linger=0.2, ca_file=self.ca_file, dial_loopback=True,
            lookup=stub_lookup(self.isp_port, timeout=0.5), source_address=PROBE_SOURCE)
        return dataclasses.replace(base, **overrides)

    async def measure(self, url: str, **overrides: Any) -> dict[str, Any]:
        control = ControlClient(self.control_base, timeout=10.0)
        return await web_check.measure(url, self.options(**overrides), control, cc="KG")


@pytest.fixture
async def network(ca_file: str, tmp_path: Any) -> AsyncIterator[Network]:
    port = shared_port(SITE_IP, UPSTREAM_IP, SPOOF_IP, BOGON_IP)
    isp: dict[tuple[str, str], Answer] = {}

    def isp_answer(name: str, qtype: str) -> Answer:
        default: Answer = [(NOERROR, [SITE_IP])] if name == DOMAIN else [(NXDOMAIN, [])]
        return isp.get((name, qtype), isp.get((name, "*"), default))

    def honest(name: str, qtype: str) -> Answer:
        return [(NOERROR, [SITE_IP])] if name == DOMAIN else [(NXDOMAIN, [])]

    async with dns_server(isp_answer) as isp_port, dns_server(honest) as honest_port:
        config = CollectorConfig(
            database=str(tmp_path / "kuzot.sqlite"), auth=Auth(require_token=False),
            control=dataclasses.replace(Control(), allow_private_addresses=True,
                                        ca_file=ca_file, resolver=f"127.0.0.1:{honest_port}",
                                        timeout=5.0))
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
        try:
            yield Network(port, isp_port, str(server.make_url("")).rstrip("/"), ca_file, isp)
        finally:
            await server.close()


def tls_context(ca: trustme.CA, name: str = DOMAIN, **kwargs: Any) -> Any:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_alpn_protocols(["http/1.1"])
    ca.issue_cert(name, **kwargs).configure_cert(context)
    return context


def verdict(keys: dict[str, Any]) -> tuple[str, str | None, str | None]:
    analysis = keys["analysis"]
    return analysis["verdict"], analysis["layer"], analysis["mechanism"]


def ooni(keys: dict[str, Any]) -> tuple[Any, Any]:
    return keys["blocking"], keys["accessible"]


def system_query(keys: dict[str, Any]) -> dict[str, Any]:
    return next(q for q in keys["queries"] if q["engine"] == "getaddrinfo")


# --- DNS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rcode", "failure", "mechanism"), [
    (NXDOMAIN, failures.DNS_NXDOMAIN, "nxdomain"),
    (SERVFAIL, failures.DNS_TEMPORARY, "servfail"),
    (NOERROR, failures.DNS_NO_ANSWER, "no_answer"),
])
async def test_dns_failures_are_blocking_when_the_control_resolves(
    network: Network, rcode: int, failure: str, mechanism: str
) -> None:
    network.isp[(DOMAIN, "*")] = [(rcode, [])]
    async with serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/")
    query = system_query(keys)
    assert (query["failure"], query["x_operation"]) == (failure, failures.OP_RESOLVE)
    assert verdict(keys) == ("blocked", "dns", mechanism)
    assert ooni(keys) == ("dns", False)
    assert keys["dns_consistency"] == "inconsistent"
    assert keys["tcp_connect"] == []


async def test_servfail_and_silence_through_a_udp_resolver(network: Network) -> None:
    network.isp[(DOMAIN, "A")] = [(SERVFAIL, [])]
    network.isp[(DOMAIN, "AAAA")] = []  # silence
    async with serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/",
                                     udp_resolvers=(f"127.0.0.1:{network.isp_port}",))
    udp = {q["query_type"]: q for q in keys["queries"] if q["engine"] == "udp"}
    assert (udp["A"]["failure"], udp["A"]["rcode"]) == (failures.DNS_SERVFAIL, 2)
    assert udp["A"]["x_operation"] == failures.OP_DNS_ROUND_TRIP
    assert udp["AAAA"]["failure"] == failures.TIMEOUT
    assert verdict(keys)[0:2] == ("blocked", "dns")


async def test_a_bogon_answer_is_flagged_and_blocking(network: Network) -> None:
    network.isp[(DOMAIN, "A")] = [(NOERROR, [BOGON_IP])]
    async with serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/")
    assert system_query(keys)["answers"][0]["x_bogon"] is True
    assert BOGON_IP in keys["x_bogon_answers"]
    assert keys["tcp_connect"][0]["status"]["failure"] == failures.CONNECTION_REFUSED
    assert verdict(keys) == ("blocked", "dns", "bogon")
    assert ooni(keys) == ("dns", False)


async def test_two_different_answers_to_one_query_are_injection(network: Network) -> None:
    network.isp[(DOMAIN, "A")] = [(NOERROR, [SPOOF_IP]), (NOERROR, [SITE_IP])]
    async with serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/",
                                     udp_resolvers=(f"127.0.0.1:{network.isp_port}",))
    udp = next(q for q in keys["queries"] if q["engine"] == "udp" and q["query_type"] == "A")
    assert [a["ipv4"] for a in udp["answers"]] == [SPOOF_IP]
    assert [a["ipv4"] for a in udp["x_late_answers"][0]["answers"]] == [SITE_IP]
    assert udp["x_late_answers"][0]["identical"] is False
    assert verdict(keys) == ("blocked", "dns", "injected")


async def test_doh_answers_are_recorded(network: Network, ca: trustme.CA) -> None:
    import dns.message
    import dns.rrset

    async def doh(request: web.Request) -> web.Response:
        query = dns.message.from_wire(await request.read())
        reply = dns.message.make_response(query)
        if query.question[0].rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(query.question[0].name, 30, "IN", "A",
                                                    SITE_IP))
        return web.Response(body=reply.to_wire(), content_type="application/dns-message")

    app = web.Application()
    app.router.add_post("/dns-query", doh)
    async with serve_app(app, tls_context(ca, "127.0.0.1")) as doh_port, \
            serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await network.measure(
            f"http://{DOMAIN}:{network.port}/",
            doh_resolvers=(f"https://127.0.0.1:{doh_port}/dns-query",))
    answers = {q["query_type"]: q for q in keys["queries"] if q["engine"] == "doh"}
    assert [a["ipv4"] for a in answers["A"]["answers"]] == [SITE_IP]
    assert answers["A"]["answers"][0]["ttl"] == 30
    assert answers["AAAA"]["failure"] == failures.DNS_NO_ANSWER
    assert verdict(keys) == ("ok", None, None)


# --- TCP ---------------------------------------------------------------------------------


async def test_refused_everywhere_is_down(network: Network) -> None:
    keys = await network.measure(f"http://{DOMAIN}:{network.port}/")
    connect = keys["tcp_connect"][0]["status"]
    assert (connect["failure"], connect["x_operation"]) == (failures.CONNECTION_REFUSED,
                                                          failures.OP_CONNECT)
    assert verdict(keys) == ("down", "tcp", "refused")
    assert ooni(keys) == (False, False)


async def test_refused_on_a_spoofed_address_is_dns(network: Network) -> None:
    network.isp[(DOMAIN, "A")] = [(NOERROR, [SPOOF_IP])]
    async with serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/")
    assert keys["tcp_connect"][0]["status"]["failure"] == failures.CONNECTION_REFUSED
    assert verdict(keys) == ("blocked", "dns", "bogon")  # loopback answers are bogons
    assert ooni(keys) == ("dns", False)


# --- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("behaviour", "failure", "mechanism"), [
    ("reset", failures.CONNECTION_RESET, "reset"),
    ("eof", failures.EOF_ERROR, "eof"),
    ("blackhole", failures.TIMEOUT, "timeout"),
])
async def test_tls_interference_after_the_client_hello(
    network: Network, ca: trustme.CA, behaviour: str, failure: str, mechanism: str
) -> None:
    async with serve_app(page_app(), tls_context(ca), host=UPSTREAM_IP, port=network.port), \
            middlebox(network.port, behaviour):
        keys = await network.measure(f"https://{DOMAIN}:{network.port}/", tls_timeout=0.5)
    handshake = keys["tls_handshakes"][0]
    assert (handshake["failure"], handshake["x_operation"]) == (failure,
                                                              failures.OP_TLS_HANDSHAKE)
    assert keys["tcp_connect"][0]["status"]["success"] is True
    assert verdict(keys) == ("blocked", "tls", mechanism)
    assert ooni(keys) == ("http-failure", False)
    assert keys["control"]["tls_handshake"][f"{SITE_IP}:{network.port}"]["status"] is True


async def test_interception_with_another_ca_is_mitm(network: Network, ca: trustme.CA) -> None:
    interceptor = trustme.CA(organization_name="Kuzot Test Interception CA")
    mitm_port = shared_port("127.0.0.30")
    async with serve_app(page_app(), tls_context(ca), host=UPSTREAM_IP, port=network.port), \
            serve_app(page_app("<title>intercepted</title>"), tls_context(interceptor),
                      host="127.0.0.30", port=mitm_port), \
            middlebox(network.port, "divert", reply=f"127.0.0.30:{mitm_port}".encode()):
        keys = await network.measure(f"https://{DOMAIN}:{network.port}/")
    handshake = keys["tls_handshakes"][0]
    assert handshake["failure"] == failures.SSL_UNKNOWN_AUTHORITY
    assert handshake["x_chain_source"] == "unverified_rehandshake"
    leaf = handshake["x_certificates"][0]
    assert leaf["issuer"] == "Kuzot Test Interception CA"
    assert handshake["peer_certificates"][0]["format"] == "base64"
    assert verdict(keys) == ("blocked", "tls", "mitm")
    assert "issuer:Kuzot Test Interception CA" in keys["analysis"]["evidence"]
    assert f"sha256:{leaf['sha256']}" in keys["analysis"]["evidence"]
    assert ooni(keys) == ("http-failure", False)


@pytest.mark.parametrize(("cert", "failure"), [
    ({"name": "other.example.net"}, failures.SSL_INVALID_HOSTNAME),
    ({"not_before": datetime.datetime(2019, 1, 1), "not_after": datetime.datetime(2020, 1, 1)},
     failures.SSL_INVALID_CERTIFICATE),
])
async def test_a_bad_certificate_seen_by_the_control_too_is_down(
    network: Network, ca: trustme.CA, cert: dict[str, Any], failure: str
) -> None:
    context = tls_context(ca, **cert)
    async with serve_app(page_app(), context, host=SITE_IP, port=network.port):
        keys = await network.measure(f"https://{DOMAIN}:{network.port}/")
    assert keys["tls_handshakes"][0]["failure"] == failure
    assert keys["control"]["tls_handshake"][f"{SITE_IP}:{network.port}"]["failure"] == failure
    assert verdict(keys) == ("down", "tls", None)
    assert ooni(keys) == (False, False)


async def test_a_good_handshake_records_version_cipher_alpn_and_chain(
    network: Network, ca: trustme.CA
) -> None:
    async with serve_app(page_app(), tls_context(ca), host=SITE_IP, port=network.port):
        keys = await network.measure(f"https://{DOMAIN}:{network.port}/")
    handshake = keys["tls_handshakes"][0]
    assert handshake["failure"] is None and handshake["x_operation"] is None
    assert handshake["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert handshake["cipher_suite"]
    assert handshake["negotiated_protocol"] == "http/1.1"
    assert handshake["x_certificates"][0]["dns_names"] == [DOMAIN]
    assert verdict(keys) == ("ok", None, None)
    assert ooni(keys) == (False, True)
    timings = keys["requests"][0]["x_timings"]
    assert set(timings) == {"dns", "connect", "tls", "ttfb", "transfer"}
    assert all(v is not None and v >= 0 for v in timings.values())


# --- HTTP --------------------------------------------------------------------------------


async def test_http_reset_after_the_host_header(network: Network) -> None:
    async with serve_app(page_app(), host=UPSTREAM_IP, port=network.port), \
            middlebox(network.port, "reset"):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/")
    request = keys["requests"][0]
    assert (request["failure"], request["x_operation"]) == (failures.CONNECTION_RESET,
                                                          failures.OP_HTTP_ROUND_TRIP)
    assert verdict(keys) == ("blocked", "http", "reset")
    assert ooni(keys) == ("http-failure", False)


# Injected responses end at the close, as a middlebox's usually do. They carry no
# Content-Length or Connection header: OONI's header comparison ignores only 25 common names,
# so those two would count as "uncommon headers shared with the real site", a match.
BLOCKPAGE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
             b"<html><title>Blocked</title><p>KUZOT-LAB-BLOCKPAGE</p></html>")
OTHER_PAGE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
              b"<html><title>Nothing</title>here</html>")


@pytest.mark.parametrize(("page", "expected", "blocking"), [
    (BLOCKPAGE, ("blocked", "http", "blockpage"), "http-diff"),
    (OTHER_PAGE, ("blocked", "http", "diff"), "http-diff"),
])
async def test_an_injected_page(network: Network, page: bytes,
                                expected: tuple[str, str, str], blocking: str) -> None:
    async with serve_app(page_app(), host=UPSTREAM_IP, port=network.port), \
            middlebox(network.port, "reply", reply=page):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/")
    assert keys["requests"][0]["response"]["code"] == 200
    assert verdict(keys) == expected
    assert ooni(keys) == (blocking, False)
    assert keys["status_code_match"] is True and keys["body_length_match"] is False
    if expected[2] == "blockpage":
        assert "confirmed:kuzot_lab_blockpage" in keys["analysis"]["evidence"]


async def test_redirects_are_followed_and_each_hop_recorded(network: Network) -> None:
    async def old(request: web.Request) -> web.Response:
        raise web.HTTPFound("/new")

    async def new(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/old", old)
    app.router.add_get("/new", new)
    async with serve_app(app, host=SITE_IP, port=network.port):
        keys = await network.measure(f"http://{DOMAIN}:{network.port}/old")
    assert [r["response"]["code"] for r in keys["requests"]] == [200, 302]
    assert [r["tags"][0] for r in keys["requests"]] == ["depth=1", "depth=0"]
    assert keys["requests"][1]["x_redirect_to"].endswith("/new")
    assert verdict(keys) == ("ok", None, None)


async def test_a_failed_control_is_inconclusive(network: Network) -> None:
    async with serve_app(page_app(), host=SITE_IP, port=network.port):
        keys = await web_check.measure(
            f"http://{DOMAIN}:{network.port}/", network.options(),
            ControlClient(f"http://127.0.0.1:{shared_port('127.0.0.1')}", timeout=2.0))
    assert keys["control_failure"] == failures.CONNECTION_REFUSED
    assert keys["requests"][0]["response"]["code"] == 200
    assert verdict(keys) == ("inconclusive", None, None)
    assert ooni(keys) == (None, None)

