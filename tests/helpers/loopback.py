"""A censored network on loopback: two DNS views, a middlebox, real sites and a real control.

Everything listens on 127.0.0.0/8. The probe connects from 127.0.0.2 and the control from
the default 127.0.0.1, so a middlebox in front of a site can treat the probe's connections the
way a censor on the probe's path would (reset, close, stay silent, answer with its own page,
or hand TLS to an interception server) while the control, "outside", reaches the real site.
The probe's "system resolver" asks the ISP DNS server and the control's resolver asks the
honest one; ``stub_lookup`` explains why the probe's resolver is injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

PROBE_SOURCE = "127.0.0.2"
SITE_IP = "127.0.0.10"  # where the world's DNS says the site is (the middlebox listens here)
UPSTREAM_IP = "127.0.0.11"  # where the real site listens behind the middlebox
DOMAIN = "www.example.com"


def stub_lookup(port: int, timeout: float = 1.0) -> Callable[[str, int], object]:
    """A system-resolver backend that asks the loopback DNS server on ``port``.

    The operating system's getaddrinfo reads /etc/resolv.conf, which a test cannot point at
    a loopback port, so the probe's ``lookup`` is replaced by this: real DNS queries to a real
    server, with the answers turned into what glibc's getaddrinfo returns or raises
    (NXDOMAIN -> EAI_NONAME, SERVFAIL or silence -> EAI_AGAIN, no address -> EAI_NODATA).
    """

    async def lookup(host: str, _port: int) -> list[tuple[str, str | None]]:
        addresses: list[str] = []
        for qtype in ("A", "AAAA"):
            query = dns.message.make_query(host, qtype)
            try:
                reply = await dns.asyncquery.udp(query, "127.0.0.1", timeout=timeout, port=port)
            except dns.exception.Timeout as exc:
                raise socket.gaierror(socket.EAI_AGAIN,
                                      "Temporary failure in name resolution") from exc
            if reply.rcode() == dns.rcode.NXDOMAIN:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            if reply.rcode() != dns.rcode.NOERROR:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            for rrset in reply.answer:
                if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    addresses += [rdata.address for rdata in rrset]
        if not addresses:
            raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
        return [(a, None) for a in addresses]

    return lookup


def shared_port(*ips: str) -> int:
    """A TCP port free on every one of ``ips`` (so one URL's port works on each address)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((ips[0], 0))
            port = int(first.getsockname()[1])
        try:
            for ip in ips:
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((ip, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no shared free port")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _first_bytes(reader: asyncio.StreamReader, trigger: bytes) -> bytes:
    """The client's first bytes: a request can arrive in more than one segment on a busy
    machine, so keep reading briefly until the trigger shows or the headers end."""
    data = await reader.read(65536)
    while data and trigger not in data and b"\r\n\r\n" not in data and len(data) < 16384:
        try:
            more = await asyncio.wait_for(reader.read(65536), 0.2)
        except TimeoutError:
            break
        if not more:
            break
        data += more
    return data


@contextlib.asynccontextmanager
async def middlebox(
    port: int, behaviour: str, upstream: tuple[str, int] = (UPSTREAM_IP, 0),
    trigger: bytes = DOMAIN.encode(), reply: bytes = b"",
) -> AsyncIterator[None]:
    """Listen on SITE_IP:``port``; forward to ``upstream`` unless a probe connection shows
    ``trigger`` (the Host header or the SNI) in its first bytes. Then: "reset", "eof",
    "blackhole", "reply" (send ``reply`` and close), or "divert" (forward to ``reply``,
    an ``ip:port`` string: the interception server)."""
    up_ip, up_port = upstream[0], upstream[1] or port
    open_writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_writers.add(writer)
        peer = writer.get_extra_info("peername")[0]
        first = await _first_bytes(reader, trigger)
        target = (up_ip, up_port)
        if peer == PROBE_SOURCE and trigger in first:
            if behaviour == "reset":
                _reset(writer)
                return
            if behaviour == "eof":
                writer.close()
                return
            if behaviour == "blackhole":
                with contextlib.suppress(ConnectionError):
                    await reader.read()
                writer.close()
                return
            if behaviour == "reply":
                writer.write(reply)
                await writer.drain()
                writer.close()
                return
            if behaviour == "divert":
                ip, _, divert_port = reply.decode().rpartition(":")
                target = (ip, int(divert_port))
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            _reset(writer)
            return
        open_writers.add(up_writer)
        up_writer.write(first)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, SITE_IP, port)
    try:
        yield
    finally:
        server.close()
        for writer in open_writers:
            writer.close()
        await server.wait_closed()
