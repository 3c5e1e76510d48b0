"""Hostile servers on loopback: what a censor's middlebox or a hostile site can send.

Each HTTP behaviour reads the request head, then writes its response and keeps writing for as
long as the client reads (capped at ``SERVER_CAP`` bytes so a broken client cannot keep a test
busy for ever). The same behaviours run over TLS (``serve(..., context=...)``). The DNS server
answers once, then floods the client with late answers (different ones, so they cannot be
folded together) from a thread, as fast as the kernel takes them.

Used by ``tests/probe/hostile``, ``tests/collector/vantage/test_control_hostile.py`` and
``bench/hostile_memory.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import dns.message
import dns.rrset

SERVER_CAP = 64 * 1024 * 1024
Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def _pump(writer: asyncio.StreamWriter, head: bytes, unit: bytes) -> None:
    """Write ``head`` then ``unit`` over and over until the peer goes away or the cap."""
    writer.write(head)
    sent = len(head)
    batch = unit * max(1, 65536 // len(unit))
    while sent < SERVER_CAP and not writer.is_closing():
        writer.write(batch)
        sent += len(batch)
        await writer.drain()


def endless_header_lines() -> Writer:
    return lambda w: _pump(w, b"HTTP/1.1 200 OK\r\n", b"X-Filler: " + b"a" * 40 + b"\r\n")


def endless_header_line() -> Writer:
    return lambda w: _pump(w, b"HTTP/1.1 200 OK\r\nX-Long: ", b"a" * 1024)


def huge_chunk() -> Writer:
    """A chunk that declares 0xFFFFFFFFFFFFFFFF bytes, then data for as long as it is read."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"
    return lambda w: _pump(w, head, b"<p>chunk</p>" * 100)


def long_chunk_size() -> Writer:
    """A chunk-size field of 41 hex digits: no parser can take it as a number it can buffer."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1" + b"0" * 40 + b"\r\n"
    return lambda w: _pump(w, head, b"x" * 1024)


def fixed(response: bytes) -> Writer:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(response)
        await writer.drain()

    return write


def big_header(size: int = 1024 * 1024) -> Writer:
    return fixed(b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * size
                 + b"\r\nContent-Length: 2\r\n\r\nok")


def many_headers(count: int) -> Writer:
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(count))
    return fixed(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\nok")


def minimal_headers(count: int) -> Writer:
    """``count`` four-byte header lines: the most header objects the byte limit lets through."""
    return fixed(b"HTTP/1.1 200 OK\r\n" + b"a:\r\n" * count + b"Content-Length: 2\r\n\r\nok")


def redirect(location: bytes) -> Writer:
    return fixed(b"HTTP/1.1 302 Found\r\nLocation: " + location
                 + b"\r\nContent-Length: 0\r\n\r\n")


def page(text: bytes) -> Writer:
    body = b"<html><head><title>" + text + b"</title></head><body>" + text + b"</body></html>"
    return fixed(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                 % len(body) + body)


def garbage() -> Writer:
    """Bytes that are no protocol at all (a TLS client gets them instead of a ServerHello)."""
    return lambda w: _pump(w, b"", bytes(range(256)))


@dataclass
class Served:
    host: str
    port: int

    def url(self, scheme: str = "http", path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"


@contextlib.asynccontextmanager
async def serve(behaviour: Writer, host: str = "127.0.0.1",
                context: ssl.SSLContext | None = None,
                read_request: bool = True) -> AsyncIterator[Served]:
    """Serve ``behaviour`` on ``host`` (a free port) for the duration of the block."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if read_request:
                await reader.readuntil(b"\r\n\r\n")
            else:
                await reader.read(1)
            await behaviour(writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError):
            pass  # the client gave up, which is what a bounded client does
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, host, 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Served(host, port)
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


class FloodingDNS:
    """A UDP DNS server on loopback that answers, then floods late answers for ``seconds``.

    It runs in a thread with a plain socket so the flood is as fast as the kernel allows,
    whatever the test's event loop is doing. ``sent`` counts the late datagrams sent.
    """

    def __init__(self, address: str, seconds: float = 1.5) -> None:
        self.address = address
        self.seconds = seconds
        self.sent = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()

    def __enter__(self) -> FloodingDNS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)

    def _answer(self, query: dns.message.Message, forged: bool) -> bytes:
        """The true answer (``address`` for A, no AAAA) or a forged one (10.0.0.0, fd00::)."""
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == 1:  # A
            address = "10.0.0.0" if forged else self.address
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
        elif forged:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "AAAA",
                                                       "fd00::"))
        return bytes(response.to_wire())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            self.sock.sendto(self._answer(query, False), peer)
            # Every late answer differs (the address's last four bytes count up), so none can
            # be folded into a copy of an earlier one.
            forged = self._answer(query, True)
            deadline = time.monotonic() + self.seconds
            i = 0
            while time.monotonic() < deadline and not self._stop.is_set():
                try:
                    self.sock.sendto(forged[:-4] + (i + 1).to_bytes(4, "big"), peer)
                except BlockingIOError:
                    continue
                except OSError:
                    break  # nothing listens any more: the client closed its socket
                self.sent += 1
                i += 1
