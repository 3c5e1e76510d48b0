"""Raw-packet observation on loopback: real packets, real raw sockets (needs CAP_NET_RAW).

On loopback every packet has the sender's TTL untouched, so a test "injector" is simply a
DNS server that sends one of its answers with a lower IP TTL (the IP_TTL socket option):
real datagrams whose headers differ as an off-path injector's would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import dns.message
import dns.rrset
import pytest

from probe.nettests.censor_trace import analysis as censor_analysis
from probe.netx import packet
from tests.helpers.processes import without_net_raw
from tests.helpers.servers import page_app, serve_app


def _require_raw() -> None:
    if packet.raw_capability() is None:
        return
    reason = "needs CAP_NET_RAW (run as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"must run in CI: {reason}")
    pytest.skip(reason)


class Racing(asyncio.DatagramProtocol):
    """Answers every query truthfully; for ``blocked.example`` an answer with IP TTL 57 and
    a forged address goes out first, as an injector racing the resolver would."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        name = query.question[0].name
        sock = self.transport.get_extra_info("socket")
        if name.to_text() == "blocked.example.":
            forged = dns.message.make_response(query)
            forged.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "10.10.34.35"))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 57)
            self.transport.sendto(forged.to_wire(), addr)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
        genuine = dns.message.make_response(query)
        genuine.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "46.36.200.10"))
        self.transport.sendto(genuine.to_wire(), addr)


@pytest.fixture
async def racing_resolver() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Racing, local_addr=("127.0.0.1", 0))
    try:
        yield int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


async def test_dns_fingerprint_marks_the_racing_answer(racing_resolver: int) -> None:
    _require_raw()
    result = await packet.dns_fingerprint("127.0.0.1", "blocked.example", "example.org",
                                          port=racing_resolver, timeout=2.0, linger=0.3)
    assert result["failure"] is None
    assert "injected" not in result  # netx observes; the analysis marks
    result.update(censor_analysis.dns_injection(result["answers"]))
    assert result["injected"] is True
    target = [a for a in result["answers"] if a["role"] == "target"]
    assert [(a["ttl"], a["addresses"], a["injected"]) for a in target] == [
        (57, ["10.10.34.35"], True), (64, ["46.36.200.10"], False)]
    control = [a for a in result["answers"] if a["role"] == "control"]
    assert [a["ttl"] for a in control] == [64]


async def test_trace_on_loopback_reaches_the_server_at_once() -> None:
    _require_raw()
    async with serve_app(page_app()) as port:
        observed = await packet.censor_trace(
            "127.0.0.1", port, packet.http_request("kloop.kg"),
            packet.http_request("example.com"), max_ttl=3, step_timeout=1.0)
    assert observed["failure"] is None
    assert [h["response"] for h in observed["control_hops"]] == ["data"]
    assert observed["control_hops"][0]["server_packet"]["flags"] == "SA"
    located = censor_analysis.locate(observed["control_hops"], observed["trigger_hops"], "http")
    assert located["analysis"]["verdict"] == "ok"
    assert located["censor"]["server_hops"] == 1


async def test_no_raw_sockets_is_permission_denied() -> None:
    """Without CAP_NET_RAW nothing is sent and the failure is ``permission_denied``."""
    command = [sys.executable, "-c",
               "from probe.netx.packet import raw_capability; print(raw_capability())"]
    command = without_net_raw(command)
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert out.decode().strip() == "permission_denied"


def test_client_hello_carries_the_sni() -> None:
    hello = packet.client_hello("web.telegram.org")
    assert hello[0] == 0x16  # TLS handshake record
    assert b"web.telegram.org" in hello
    assert b"Host: kloop.kg\r\n" in packet.http_request("kloop.kg")
