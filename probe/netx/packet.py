"""Raw packets: what a plain socket cannot see.

A censor that resets a connection or answers a DNS query on the server's behalf writes its own
IP header: its TTL (distance from the probe) and IP ID (its own counter) usually differ from
the real server's. A censor also sits at a definite hop: sending the triggering request (the
blocked Host or SNI) with increasing TTL shows the first hop at which the reset, the blockpage
or the drop happens (the CenTrace method: Raman et al., "Network measurement methods for
locating and examining censorship devices", CoNEXT 2022).

How: the kernel's own TCP stack makes the connection (so no stray resets from the probe's
kernel), the IP TTL of the connected socket is lowered only for the request, and copies of the
incoming ICMP/TCP/UDP packets are read from raw sockets and dissected with scapy. Nothing here
forges packets. Reading raw sockets needs CAP_NET_RAW; without it (or without scapy) every
function returns a record with ``failure`` set (``permission_denied``) and sends nothing.
IPv4 only.

Scapy is imported inside the functions that dissect packets, never at module level, and only
once a raw socket has opened: it costs about 50 MB of resident memory, more than the whole
daemon otherwise needs on a Raspberry Pi (``tests/probe/daemon/test_footprint.py`` checks that a
round of sites does not load it).

Verdicts (injected or not, where the censor is) come from ``probe.nettests.censor_trace.analysis``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from probe.core import failures

Record = dict[str, Any]

_PROTOCOLS = {"icmp": socket.IPPROTO_ICMP, "tcp": socket.IPPROTO_TCP,
              "udp": socket.IPPROTO_UDP}
_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def raw_socket_problem() -> str | None:
    """None when a raw socket opens (CAP_NET_RAW); else the failure string.

    Opening a raw socket is the one reliable test of CAP_NET_RAW (capability bits, user
    namespaces and seccomp all play a part); the socket is closed at once, nothing is sent.
    Scapy is not imported: the daemon asks this at start to decide whether to plan traces.
    """
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        return failures.PERMISSION_DENIED
    except OSError as exc:
        return failures.classify(exc)
    probe.close()
    return None


def raw_capability() -> str | None:
    """None when a raw socket opens and scapy imports; else the failure string.

    The socket is tried first: importing scapy costs about 50 MB of resident memory for the
    life of the process, which a probe without CAP_NET_RAW (or one that never needs raw
    packets) must not pay.
    """
    problem = raw_socket_problem()
    if problem:
        return problem
    try:
        import scapy.layers.inet  # noqa: F401
    except ImportError:
        return failures.unknown("scapy is not installed")
    return None


@dataclass(frozen=True, slots=True)
class Packet:
    """The fields of one captured packet that the analysis needs (plain values, no scapy)."""

    t: float
    proto: str
    src: str
    dst: str
    ttl: int
    ip_id: int
    sport: int | None = None
    dport: int | None = None
    flags: str = ""
    payload_length: int = 0
    payload: bytes = b""
    icmp_type: int | None = None
    quoted_dst: str | None = None
    quoted_sport: int | None = None
    quoted_dport: int | None = None

    def header(self) -> Record:
        """TTL and IP ID as recorded in the evidence."""
        return {"src": self.src, "ttl": self.ttl, "ip_id": self.ip_id, "flags": self.flags,
                "payload_length": self.payload_length}


def dissect(data: bytes, at: float) -> Packet | None:
    """Parse one IPv4 packet as read from a raw socket (header included) with scapy."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror

    try:
        ip = IP(data)
    except Exception:
        return None
    common: dict[str, Any] = {"t": at, "src": str(ip.src), "dst": str(ip.dst),
                              "ttl": int(ip.ttl), "ip_id": int(ip.id)}
    if ip.haslayer(TCP) and not ip.haslayer(ICMP):
        segment = ip[TCP]
        payload = bytes(segment.payload)
        flags = "".join(name for name, bit in _FLAG_BITS.items() if int(segment.flags) & bit)
        return Packet(proto="tcp", sport=int(segment.sport), dport=int(segment.dport),
                      flags=flags, payload_length=len(payload), payload=payload[:512], **common)
    if ip.haslayer(UDP) and not ip.haslayer(ICMP):
        datagram = ip[UDP]
        payload = bytes(datagram.payload)
        return Packet(proto="udp", sport=int(datagram.sport), dport=int(datagram.dport),
                      payload_length=len(payload), payload=payload[:1500], **common)
    if ip.haslayer(ICMP):
        icmp = ip[ICMP]
        quoted_dst = quoted_sport = quoted_dport = None
        if icmp.haslayer(IPerror):
            quoted_dst = str(icmp[IPerror].dst)
            inner = icmp[TCPerror] if icmp.haslayer(TCPerror) else (
                icmp[UDPerror] if icmp.haslayer(UDPerror) else None)
            if inner is not None:
                quoted_sport, quoted_dport = int(inner.sport), int(inner.dport)
        return Packet(proto="icmp", icmp_type=int(icmp.type), quoted_dst=quoted_dst,
                      quoted_sport=quoted_sport, quoted_dport=quoted_dport, **common)
    return None


class Capture:
    """Copies of the incoming packets of some protocols, read from raw sockets while open."""

    def __init__(self, protocols: tuple[str, ...] = ("icmp", "tcp"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.protocols = protocols
        self.clock = clock
        self.packets: list[Packet] = []
        self._arrived = asyncio.Event()
        self._sockets: list[socket.socket] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Capture:
        try:
            for name in self.protocols:
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, _PROTOCOLS[name])
                sock.setblocking(False)
                self._sockets.append(sock)
        except BaseException:
            self._close()
            raise
        self._tasks = [asyncio.create_task(self._read(s)) for s in self._sockets]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close()

    def _close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    async def _read(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(sock, 65535)
            parsed = dissect(data, self.clock())
            if parsed is not None:
                self.packets.append(parsed)
                self._arrived.set()

    async def wait_for(self, match: Callable[[Packet], bool], timeout: float) -> Packet | None:
        """The first packet (already captured or arriving within ``timeout``) that matches."""
        deadline = self.clock() + timeout
        while True:
            found = next((p for p in self.packets if match(p)), None)
            if found is not None:
                return found
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


def http_request(host: str, path: str = "/") -> bytes:
    """A plain GET whose Host header carries the name under test."""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n").encode("latin-1")


def client_hello(sni: str) -> bytes:
    """The first TLS flight (a ClientHello carrying ``sni``), made by the ssl module itself."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@contextlib.asynccontextmanager
async def _connection(ip: str, port: int, timeout: float) -> AsyncIterator[socket.socket]:
    """A kernel TCP connection, aborted on exit with a reset sent at the normal TTL."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (ip, port))
        yield sock
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def _from_server(ip: str, port: int, local: int) -> Callable[[Packet], bool]:
    return lambda p: p.proto == "tcp" and p.src == ip and p.sport == port and p.dport == local


def _response_kind(packet: Packet) -> str | None:
    if "R" in packet.flags:
        return "reset"
    if packet.payload_length:
        return "data"
    if "F" in packet.flags:
        return "fin"
    return None


async def _step(ip: str, port: int, payload: bytes, ttl: int | None, capture: Capture,
                timeout: float, settle: float, connect_timeout: float) -> Record:
    """Connect, send ``payload`` with IP TTL ``ttl`` (None: unchanged), see what comes back."""
    loop = asyncio.get_running_loop()
    hop: Record = {"ttl": ttl, "icmp_from": None, "response": None, "response_packet": None,
                   "server_packet": None, "failure": None}
    try:
        async with _connection(ip, port, connect_timeout) as sock:
            local = int(sock.getsockname()[1])
            from_server = _from_server(ip, port, local)
            synack = await capture.wait_for(lambda p: from_server(p) and "S" in p.flags, 0.5)
            hop["server_packet"] = synack.header() if synack else None
            sent_at = capture.clock()
            if ttl is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            await loop.sock_sendall(sock, payload)

            def expired(p: Packet) -> bool:
                return (p.proto == "icmp" and p.icmp_type == 11 and p.quoted_dst == ip
                        and p.quoted_sport == local and p.quoted_dport == port)

            def answered(p: Packet) -> bool:
                return from_server(p) and p.t >= sent_at and _response_kind(p) is not None

            def acked(p: Packet) -> bool:
                return from_server(p) and p.t >= sent_at and "S" not in p.flags

            first = await capture.wait_for(lambda p: expired(p) or answered(p), timeout)
            if first is not None:
                await asyncio.sleep(settle)
            icmp = next((p for p in capture.packets if expired(p)), None)
            response = next((p for p in capture.packets if answered(p)), None)
            ack = next((p for p in capture.packets if acked(p)), None)
            if icmp is not None:
                hop["icmp_from"] = icmp.src
            if response is not None:
                hop["response"] = _response_kind(response)
                hop["response_packet"] = {**response.header(),
                                          "payload_sample": response.payload[:200].decode(
                                              "latin-1")}
            elif ack is not None:
                hop["response"] = "ack"
                hop["response_packet"] = ack.header()
    except Exception as exc:  # classified here, at the netx boundary
        hop["failure"] = failures.classify(exc)
    return hop


async def trace_path(
    ip: str, port: int, payload: bytes, capture: Capture, max_ttl: int, step_timeout: float,
    connect_timeout: float, settle: float = 0.2,
) -> list[Record]:
    """One step per TTL from 1 up, until the far end answers or ``max_ttl``."""
    hops = []
    for ttl in range(1, max_ttl + 1):
        hop = await _step(ip, port, payload, ttl, capture, step_timeout, settle,
                          connect_timeout)
        hops.append(hop)
        if hop["response"] is not None:
            break
    return hops


SERVER_ANSWERS = ("data", "ack", "fin", "reset")


def server_distance(hops: list[Record]) -> int | None:
    """The TTL at which the control trace's request first drew an answer (the server's)."""
    for hop in hops:
        if hop.get("response") in SERVER_ANSWERS:
            return int(hop["ttl"])
    return None


async def censor_trace(
    ip: str, port: int, trigger: bytes, control: bytes, max_ttl: int = 30,
    step_timeout: float = 1.0, connect_timeout: float = 5.0,
) -> Record:
    """Trace with a harmless request (control), then with the triggering one.

    The control trace finds how many hops away the server answers; the trigger trace stops
    there (plus two) at the latest, so a silent drop costs a bounded number of steps.
    """
    record: Record = {"address": ip, "port": port, "failure": None, "control_hops": [],
                      "trigger_hops": []}
    problem = raw_capability()
    if problem:
        record["failure"] = problem
        return record
    if ":" in ip:
        record["failure"] = failures.unknown("the censor trace supports IPv4 only")
        return record
    try:
        async with Capture(("icmp", "tcp")) as capture:
            record["control_hops"] = await trace_path(ip, port, control, capture, max_ttl,
                                                      step_timeout, connect_timeout)
            distance = server_distance(record["control_hops"])
            limit = min(max_ttl, distance + 2) if distance else max_ttl
            record["trigger_hops"] = await trace_path(ip, port, trigger, capture, limit,
                                                      step_timeout, connect_timeout)
    except PermissionError:
        record["failure"] = failures.PERMISSION_DENIED
    except OSError as exc:
        record["failure"] = failures.classify(exc)
    return record


async def reset_fingerprint(ip: str, port: int, trigger: bytes, timeout: float) -> Record:
    """Send ``trigger`` on a fresh connection; record the answer's packet and the server's
    SYN-ACK (``probe.nettests.censor_trace.analysis.injection`` compares them: observation
    here, interpretation there)."""
    record: Record = {"address": ip, "port": port, "failure": None}
    problem = raw_capability()
    if problem or ":" in ip:
        record["failure"] = problem or failures.unknown("IPv4 only")
        return record
    try:
        async with Capture(("tcp",)) as capture:
            hop = await _step(ip, port, trigger, None, capture, timeout, 0.1, timeout)
    except PermissionError:
        record["failure"] = failures.PERMISSION_DENIED
        return record
    record["server_packet"] = hop["server_packet"]
    record["response"] = hop["response"]
    record["response_packet"] = hop["response_packet"]
    if hop["failure"]:
        record["failure"] = hop["failure"]
    return record


async def dns_fingerprint(
    resolver: str, name: str, control_name: str, port: int = 53, timeout: float = 2.0,
    linger: float = 0.5,
) -> Record:
    """Ask ``resolver`` for ``control_name`` then ``name``; record every answer's IP header.

    Every answer datagram to each query is kept (an injector races the real answer), with its
    TTL and IP ID; ``probe.nettests.censor_trace.analysis.dns_injection`` marks the answers to
    ``name`` unlike those to ``control_name`` as injected.
    """
    import dns.message

    record: Record = {"resolver": f"{resolver}:{port}", "name": name,
                      "control_name": control_name, "failure": None, "answers": []}
    problem = raw_capability()
    if problem or ":" in resolver:
        record["failure"] = problem or failures.unknown("IPv4 only")
        return record
    loop = asyncio.get_running_loop()
    try:
        async with Capture(("udp",)) as capture:
            for qname, role in ((control_name, "control"), (name, "target")):
                query = dns.message.make_query(qname, "A")
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (resolver, port))
                    local = int(sock.getsockname()[1])
                    await loop.sock_sendall(sock, query.to_wire())

                    def match(p: Packet, local: int = local) -> bool:
                        return (p.proto == "udp" and p.src == resolver and p.sport == port
                                and p.dport == local)

                    if await capture.wait_for(match, timeout) is not None:
                        await asyncio.sleep(linger)
                    for packet in [p for p in capture.packets if match(p)]:
                        record["answers"].append({"role": role, **packet.header(),
                                                  **_dns_summary(packet.payload, query.id)})
                finally:
                    sock.close()
    except PermissionError:
        record["failure"] = failures.PERMISSION_DENIED
        return record
    except OSError as exc:
        record["failure"] = failures.classify(exc)
        return record
    return record


def _dns_summary(payload: bytes, query_id: int) -> Record:
    import dns.message
    import dns.rcode
    import dns.rdatatype

    try:
        message = dns.message.from_wire(payload)
    except Exception:
        return {"rcode": None, "addresses": [], "matches_query": False}
    addresses = [str(r.address) for rrset in message.answer for r in rrset
                 if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)]
    return {"rcode": dns.rcode.to_text(message.rcode()), "addresses": addresses,
            "matches_query": message.id == query_id}


def packet_record(packet: Packet) -> Record:
    """A captured packet as a JSON-ready record (payload left out)."""
    out = asdict(packet)
    out.pop("payload")
    return out
