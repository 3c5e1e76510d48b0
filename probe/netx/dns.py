"""DNS lookups: the system resolver (getaddrinfo), raw UDP queries with dnspython, and DoH.

The raw UDP path keeps listening after the first answer (``linger``, 500 ms by default, as
OONI does) and records late or duplicate answers: a censor that injects a forged answer races
the real one, so two different answers to one query are evidence of injection.
Records follow OONI df-002 (``queries``): ``rcode`` is the integer DNS response code, as in
OONI's data format (its loader rejects a measurement with a name there). Kuzot's own keys carry
OONI's extension prefix ``x_``: ``x_cnames``, ``x_ttl`` and ``x_late_answers`` for UDP,
``x_bogon`` on each answer (IANA special-purpose ranges), and ``x_operation`` beside every
``failure``.

A censor (or anyone on the path) can flood the listening window with answers, so what is kept
is bounded: at most ``MAX_LATE_ANSWERS`` late answers, each different from the ones kept
before (a flood of copies of one answer keeps one copy), and at most ``MAX_ANSWERS`` addresses
per answer. ``x_late_answers_total``/``x_late_answers_bytes`` count every late datagram and
``x_late_answers_dropped`` says how many were not kept; ``x_answers_dropped`` how many
addresses were not recorded. A DoH answer is read up to ``MAX_DOH_BYTES``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from probe.core import failures
from probe.core.bogons import is_bogon
from probe.netx.trace import Trace

Record = dict[str, Any]

MAX_LATE_ANSWERS = 16
MAX_ANSWERS = 32
MAX_DOH_BYTES = 65535  # the largest DNS message (RFC 8484 section 6 uses the same bound)

_RCODE_FAILURE = {
    dns.rcode.NXDOMAIN: failures.DNS_NXDOMAIN,
    dns.rcode.SERVFAIL: failures.DNS_SERVFAIL,
    dns.rcode.REFUSED: failures.DNS_REFUSED,
}


Lookup = Callable[[str, int], Awaitable[list[tuple[str, str | None]]]]
"""A system-resolver backend: (host, port) -> [(address, canonical name or None)].

Raises what ``getaddrinfo`` raises (``socket.gaierror`` and friends). The default is the
operating system's; tests inject one that asks a loopback DNS server, because the real
``getaddrinfo`` reads ``/etc/resolv.conf``, which a test cannot point at a loopback port."""


def _answer(address: str, ttl: int | None = None) -> Record:
    kind = "AAAA" if ":" in address else "A"
    key = "ipv6" if kind == "AAAA" else "ipv4"
    return {"answer_type": kind, key: address, "ttl": ttl, "x_bogon": is_bogon(address)}


def addresses_of(query: Record) -> list[str]:
    """The A/AAAA addresses in one ``queries`` record, in answer order."""
    out = []
    for answer in query.get("answers") or []:
        address = answer.get("ipv4") or answer.get("ipv6")
        if address:
            out.append(address)
    return out


async def system_lookup(host: str, port: int) -> list[tuple[str, str | None]]:
    """The operating system's resolver (getaddrinfo), both address families."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_CANONNAME)
    canonical = next((info[3] for info in infos if info[3]), None)
    return [(str(info[4][0]), canonical) for info in infos]


async def getaddrinfo(
    domain: str, trace: Trace, timeout: float, port: int = 443, lookup: Lookup | None = None
) -> Record:
    """Resolve with the system resolver, as an ordinary application would (IPv4 and IPv6)."""
    t0 = trace.now()
    record: Record = {
        "engine": "getaddrinfo",
        "resolver_address": "",
        "query_type": "ANY",
        "hostname": domain,
        "answers": [],
        "x_cnames": [],
        "failure": None,
        "x_operation": None,
        "t0": t0,
    }
    try:
        async with asyncio.timeout(timeout):
            results = await (lookup or system_lookup)(domain, port)
    except Exception as exc:  # classified at this boundary, never propagated
        record["failure"] = failures.classify(exc)
        record["x_operation"] = failures.OP_RESOLVE
    else:
        seen: list[str] = []
        for address, canonical in results:
            if address not in seen:
                seen.append(address)
            if canonical and canonical.rstrip(".") != domain and \
                    canonical.rstrip(".") not in record["x_cnames"]:
                record["x_cnames"].append(canonical.rstrip("."))
        record["answers"] = [_answer(a) for a in seen]
        if not seen:
            record["failure"] = failures.DNS_NO_ANSWER
            record["x_operation"] = failures.OP_RESOLVE
    record["t"] = trace.now()
    return record


class _Collect(asyncio.DatagramProtocol):
    """Keeps the first datagram that answers our query id and a bounded set of later ones.

    Later datagrams are counted (number and bytes) whatever happens; one is kept only if it
    differs from every one kept so far and fewer than ``MAX_LATE_ANSWERS`` are kept, so a flood
    costs a counter increment per datagram, not memory.
    """

    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.responses: list[tuple[float, bytes]] = []
        self.seen: set[bytes] = set()
        self.late_total = 0
        self.late_bytes = 0
        self.late_dropped = 0
        self.first = asyncio.get_running_loop().create_future()
        self.error: Exception | None = None
        self.clock = asyncio.get_running_loop().time

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 2 or int.from_bytes(data[:2], "big") != self.query_id:
            return
        if self.responses:
            self.late_total += 1
            self.late_bytes += len(data)
            body = data[2:]
            if body in self.seen or len(self.responses) > MAX_LATE_ANSWERS:
                self.late_dropped += 1
                return
        self.seen.add(data[2:])
        self.responses.append((self.clock(), data))
        if not self.first.done():
            self.first.set_result(None)

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        if not self.first.done():
            self.first.set_exception(exc)


def _parse(wire: bytes, domain: str, qtype: str) -> Record:
    message = dns.message.from_wire(wire)
    rcode = message.rcode()
    answers: list[Record] = []
    cnames: list[str] = []
    ttl: int | None = None
    dropped = 0
    for rrset in message.answer:
        for rdata in rrset:
            if len(answers) + len(cnames) >= MAX_ANSWERS:
                dropped += 1
            elif rrset.rdtype == dns.rdatatype.CNAME:
                cnames.append(str(rdata.target).rstrip("."))
            elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                answers.append(_answer(rdata.address, rrset.ttl))
                ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    failure = _RCODE_FAILURE.get(rcode)
    if failure is None and rcode != dns.rcode.NOERROR:
        failure = failures.unknown(f"rcode {dns.rcode.to_text(rcode)}")
    if failure is None and not answers:
        failure = failures.DNS_NO_ANSWER
    return {
        "rcode": int(rcode),
        "answers": answers,
        "x_cnames": cnames,
        "x_ttl": ttl,
        "failure": failure,
        "x_answers_dropped": dropped,
    }


async def query_udp(
    domain: str,
    resolver: str,
    trace: Trace,
    timeout: float,
    qtype: str = "A",
    port: int = 53,
    linger: float = 0.5,
) -> Record:
    """One raw UDP query; answers arriving within ``linger`` after the first are recorded."""
    loop = asyncio.get_running_loop()
    query = dns.message.make_query(domain, qtype)
    query.flags |= dns.flags.RD
    record: Record = {
        "engine": "udp",
        "resolver_address": f"{resolver}:{port}" if ":" not in resolver else f"[{resolver}]:{port}",
        "query_type": qtype,
        "hostname": domain,
        "answers": [],
        "failure": None,
        "rcode": None,
        "x_cnames": [],
        "x_late_answers": [],
        "x_late_answers_total": 0,
        "x_late_answers_bytes": 0,
        "x_late_answers_dropped": 0,
        "x_operation": None,
        "t0": trace.now(),
    }
    family = socket.AF_INET6 if ":" in resolver else socket.AF_INET
    transport = None
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Collect(query.id), remote_addr=(resolver, port), family=family
        )
        transport.sendto(query.to_wire())
        async with asyncio.timeout(timeout):
            await protocol.first
        record["t"] = trace.now()
        await asyncio.sleep(linger)
    except Exception as exc:
        record["failure"] = failures.classify(exc)
        record["x_operation"] = failures.OP_DNS_ROUND_TRIP
        record["t"] = trace.now()
        return record
    finally:
        if transport is not None:
            transport.close()
    record.update(x_late_answers_total=protocol.late_total,
                  x_late_answers_bytes=protocol.late_bytes,
                  x_late_answers_dropped=protocol.late_dropped)
    first_at, first = protocol.responses[0]
    try:
        record.update(_parse(first, domain, qtype))
    except Exception as exc:
        record["failure"] = failures.unknown(f"malformed DNS answer: {exc}")
    if record["failure"] is not None:
        record["x_operation"] = failures.OP_DNS_ROUND_TRIP
    for at, wire in protocol.responses[1:]:
        try:
            late = _parse(wire, domain, qtype)
        except Exception:
            late = {"rcode": None, "answers": [], "failure": "unknown_failure: malformed"}
        late["delay"] = round(at - first_at, 6)
        late["identical"] = wire[2:] == first[2:]
        record["x_late_answers"].append(late)
    return record


async def query_doh(
    domain: str,
    url: str,
    trace: Trace,
    timeout: float,
    qtype: str = "A",
    ca_file: str | None = None,
) -> Record:
    """One DNS-over-HTTPS query (RFC 8484, POST of the wire format) to ``url``.

    DoH cannot be injected or read on the path, so its answer is a second opinion beside the
    system resolver; OONI likewise ignores DoH failures when judging the site (they say
    something about the DoH service, not about the site).
    """
    import aiohttp

    from probe.netx.tls import client_context

    query = dns.message.make_query(domain, qtype)
    query.flags |= dns.flags.RD
    query.id = 0  # RFC 8484 section 4.1: id 0 keeps answers cacheable
    record: Record = {
        "engine": "doh",
        "resolver_address": url,
        "query_type": qtype,
        "hostname": domain,
        "answers": [],
        "failure": None,
        "rcode": None,
        "x_cnames": [],
        "x_operation": None,
        "t0": trace.now(),
    }
    headers = {"Content-Type": "application/dns-message", "Accept": "application/dns-message"}
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            connector=aiohttp.TCPConnector(ssl=client_context(ca_file), force_close=True),
        ) as session:
            async with session.post(url, data=query.to_wire(), headers=headers) as response:
                wire = b""
                while len(wire) <= MAX_DOH_BYTES:
                    data = await response.content.read(MAX_DOH_BYTES + 1 - len(wire))
                    if not data:
                        break
                    wire += data
                status = response.status
    except Exception as exc:
        record["failure"] = failures.classify(exc)
        record["x_operation"] = failures.OP_DNS_ROUND_TRIP
        record["t"] = trace.now()
        return record
    record["t"] = trace.now()
    if status != 200:
        record["failure"] = failures.unknown(f"DoH server answered HTTP {status}")
    elif len(wire) > MAX_DOH_BYTES:
        record["failure"] = failures.unknown("malformed DNS answer: larger than 65535 bytes")
    else:
        try:
            record.update(_parse(wire, domain, qtype))
        except Exception as exc:
            record["failure"] = failures.unknown(f"malformed DNS answer: {exc}")
    if record["failure"] is not None:
        record["x_operation"] = failures.OP_DNS_ROUND_TRIP
    return record
