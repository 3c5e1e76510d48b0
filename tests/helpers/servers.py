"""Loopback servers that behave like the pieces of a censored network.

Everything listens on 127.0.0.1 with an ephemeral port; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import trustme
from aiohttp import web

PAGE = ("<html><head><title>Kloop independent news Bishkek</title></head>"
        "<body>" + "news " * 400 + "</body></html>")


def page_app(body: str = PAGE, status: int = 200) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status, content_type="text/html",
                            headers={"X-Kuzot-Site": "1"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


class SlowPages:
    """Pages that each take ``delay`` seconds to answer. ``peak`` is the most that were being
    answered at once: what a client's concurrency limit is checked against."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.app = web.Application()
        self.app.router.add_get("/{tail:.*}", self._page)

    async def _page(self, request: web.Request) -> web.Response:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.delay)
            return web.Response(text="<title>slow</title>", content_type="text/html")
        finally:
            self.running -= 1


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, context: ssl.SSLContext | None = None,
                    host: str = "127.0.0.1", port: int = 0,
                    **runner_options: Any) -> AsyncIterator[int]:
    """Run ``app`` on ``host``; yields the bound port. ``runner_options`` go to aiohttp's
    ``AppRunner`` (e.g. ``access_log``)."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield int(bound)
    finally:
        await runner.cleanup()


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@contextlib.asynccontextmanager
async def tcp_behaviour(
    behaviour: str, host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """A TCP server that accepts and then resets ("reset"), says nothing ("blackhole"),
    or closes cleanly ("eof") after reading the first bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if behaviour == "blackhole":
            await asyncio.sleep(3600)
            return
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        if behaviour == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


class DNSServer(asyncio.DatagramProtocol):
    """A tiny authoritative UDP DNS server; ``answer(qname, qtype)`` decides each reply.

    ``answer`` returns a list of (rcode, addresses) replies: usually one, two to emulate an
    injected answer racing the real one, none to stay silent.
    """

    def __init__(self, answer: Callable[[str, str], list[tuple[int, list[str]]]]) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport is not a DatagramTransport subclass on 3.11.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        qname = question.name.to_text().rstrip(".")
        qtype = dns.rdatatype.to_text(question.rdtype)
        for rcode, addresses in self.answer(qname, qtype):
            reply = dns.message.make_response(query)
            reply.set_rcode(rcode)
            for address in addresses:
                rtype = "AAAA" if ":" in address else "A"
                if rtype == qtype:
                    reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", rtype,
                                                            address))
            assert self.transport is not None
            self.transport.sendto(reply.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server(
    answer: Callable[[str, str], list[tuple[int, list[str]]]], host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: DNSServer(answer),
                                                       local_addr=(host, 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


NOERROR = dns.rcode.NOERROR
NXDOMAIN = dns.rcode.NXDOMAIN
SERVFAIL = dns.rcode.SERVFAIL
