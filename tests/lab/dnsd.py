"""Small UDP DNS servers for the lab: authoritative, forwarding, and lying.

All three share one shape: a coroutine maps a query to a response (or to ``None`` to stay
silent). They are real dnspython servers on real sockets inside the lab's namespaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Handler = Callable[[dns.message.Message], Awaitable[dns.message.Message | None]]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        response = await self.handle(query)
        if response is not None and self.transport is not None:
            self.transport.sendto(response.to_wire(), addr)


async def serve(address: str, handle: Handler, port: int = 53) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(handle),
                                                       local_addr=(address, port))
    return transport


def question(query: dns.message.Message) -> tuple[str, str]:
    """(name without the final dot, lower case; record type) of a query's first question."""
    q = query.question[0]
    return q.name.to_text().rstrip(".").lower(), dns.rdatatype.to_text(q.rdtype)


def reply(query: dns.message.Message, rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
          addresses: tuple[str, ...] = (), authoritative: bool = False) -> dns.message.Message:
    """A response to ``query`` carrying the ``addresses`` of the asked type."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    # A resolver says it recursed (RA); glibc takes an empty NOERROR without RA or AA for a
    # lame referral and gives up with a temporary failure instead of "no data".
    response.flags |= dns.flags.AA if authoritative else dns.flags.RA
    _name, qtype = question(query)
    for address in addresses:
        rtype = "AAAA" if ":" in address else "A"
        if rtype == qtype:
            response.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", rtype,
                                                       address))
    return response


def authoritative(zone: dict[str, dict[str, str | None]]) -> Handler:
    """The world's authoritative server. ``zone[name] = {"kind": a|aaaa_only|no_a|localhost,
    "ip": ..., "ip6": ... or None}``; names not in the zone do not exist."""

    async def handle(query: dns.message.Message) -> dns.message.Message:
        name, qtype = question(query)
        entry = zone.get(name)
        if entry is None:
            return reply(query, dns.rcode.NXDOMAIN, authoritative=True)
        if entry["kind"] in ("a", "aaaa_only"):
            wanted = ("ip6",) if entry["kind"] == "aaaa_only" else ("ip", "ip6")
            addresses = tuple(a for a in (entry.get(k) for k in wanted) if a)
            return reply(query, addresses=addresses, authoritative=True)
        if entry["kind"] == "localhost":
            return reply(query, addresses=("127.0.0.1",), authoritative=True)
        if qtype == "TXT":
            response = reply(query, authoritative=True)
            response.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "TXT",
                                                       '"no address here"'))
            return response
        return reply(query, authoritative=True)  # the name exists, without A/AAAA records

    return handle


def forwarder(upstream: str, delay: float = 0.0, timeout: float = 1.0,
              lies: dict[str, str] | None = None) -> Handler:
    """A recursive resolver that asks ``upstream``; ``lies[name]`` overrides the truth.

    Lies: ``nxdomain``, ``servfail``, ``silent`` (no reply at all), ``empty`` (NOERROR with no
    address) or ``a:IP``. An upstream that does not answer in ``timeout`` gives SERVFAIL, as
    a real resolver without an uplink does.
    """
    table = lies or {}

    async def handle(query: dns.message.Message) -> dns.message.Message | None:
        name, _qtype = question(query)
        lie = table.get(name)
        if lie == "silent":
            return None
        if lie == "nxdomain":
            return reply(query, dns.rcode.NXDOMAIN)
        if lie == "servfail":
            return reply(query, dns.rcode.SERVFAIL)
        if lie == "empty":
            return reply(query)
        if lie is not None and lie.startswith("a:"):
            return reply(query, addresses=(lie[2:],))
        if delay:
            await asyncio.sleep(delay)
        try:
            response = await dns.asyncquery.udp(query, upstream, timeout=timeout)
        except Exception:
            return reply(query, dns.rcode.SERVFAIL)
        response.flags |= dns.flags.RA
        response.flags &= ~dns.flags.AA
        return response

    return handle
