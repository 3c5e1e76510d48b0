"""The packets the prober sends: one ICMP echo request or one TCP SYN, and the reply it waits for.

What goes on the wire, so the operator can answer for it:

* ICMP echo request (type 8), 8 bytes of payload, identifier fixed per prober process, sequence
  number counting up. A reply is an echo reply (type 0) from the probed address with the same
  identifier and sequence.
* TCP SYN to one port (80 and 443 by default) from a source port of our own range, with a
  random sequence number and no payload. A reply is a SYN-ACK or a RST from the probed address
  that acknowledges our sequence number: either proves the address is reachable. The kernel
  has no socket for the SYN-ACK and answers it with a RST, so no connection is left open at the
  target.
* ICMP errors (unreachable, time exceeded) are not replies: they come from a router, not from
  the block.

How: the packets are built with scapy and written to one raw IPv4 socket (``IPPROTO_RAW``, the
header is ours); replies are read from two raw receive sockets (ICMP and TCP) that the event
loop watches. The source address is the one the kernel's routing picks for the target (a
connected UDP socket answers that without sending anything). Every socket comes from
``make_socket``, so a test can open them inside a network namespace. Raw sockets need
CAP_NET_RAW: ``open`` raises ``PermissionError`` without it and nothing is sent.

This module sends whatever it is given: the scope and the rate are enforced one level up, in
``collector.outside.sender``, the only caller.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import itertools
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

SocketFactory = Callable[[int, int, int], socket.socket]

SOURCE_PORTS = range(33000, 34000)
"""The source ports of our TCP SYNs (a reply is matched on them)."""

_ICMP_ECHO_REPLY = 0
_TCP_SYN_ACK = 0x12
_TCP_RST = 0x04
_RECV_BYTES = 2048


class Method(enum.StrEnum):
    ICMP = "icmp"
    TCP = "tcp"


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """One address and the way it answers: ICMP echo, or a TCP SYN to ``port``."""

    address: ipaddress.IPv4Address
    method: Method
    port: int | None = None

    def __post_init__(self) -> None:
        if (self.method is Method.TCP) != (self.port is not None):
            raise ValueError("a TCP target needs a port and an ICMP target has none")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")

    def __str__(self) -> str:
        return f"{self.address}" if self.port is None else f"{self.address}:{self.port}/tcp"


class Transport(Protocol):
    """Sends one probe and says whether the target answered within ``timeout`` seconds."""

    async def probe(self, target: Target, timeout: float) -> bool: ...


_Key = tuple[str, int, int, int]


_READ_BATCH = 256
_RECEIVE_BUFFER = 4 * 1024 * 1024


def _enlarge(receiver: socket.socket) -> None:
    """Ask for a 4 MiB receive queue (past ``net.core.rmem_max`` when the process may): a
    round's replies arrive together, and the kernel drops what does not fit."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    for option in (force, socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            receiver.setsockopt(socket.SOL_SOCKET, option, _RECEIVE_BUFFER)
            return
        except OSError:
            continue


class RawTransport:
    """ICMP echo and TCP SYN probes over raw sockets, replies matched by the event loop."""

    def __init__(self, make_socket: SocketFactory = socket.socket) -> None:
        self._make_socket = make_socket
        self._ident = secrets.randbelow(0xFFFF) + 1
        self._sequence = itertools.count(1)
        self._ports = itertools.cycle(SOURCE_PORTS)
        self._waiting: dict[_Key, tuple[asyncio.Future[bool], int]] = {}
        self._send: socket.socket | None = None
        self._route: socket.socket | None = None
        self._receivers: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> RawTransport:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the sockets and start reading replies; raises ``PermissionError`` without
        CAP_NET_RAW (nothing is left open then)."""
        # Scapy is imported only here: it costs tens of MB, and a collector with the
        # component switched off never pays it.
        import scapy.layers.inet  # noqa: F401

        loop = asyncio.get_running_loop()
        made: list[socket.socket] = []
        try:
            send = self._make_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            made.append(send)
            route = self._make_socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            made.append(route)
            for protocol in (socket.IPPROTO_ICMP, socket.IPPROTO_TCP):
                receiver = self._make_socket(socket.AF_INET, socket.SOCK_RAW, protocol)
                made.append(receiver)
                receiver.setblocking(False)
                _enlarge(receiver)
                self._receivers.append(receiver)
        except BaseException:
            for sock in made:
                sock.close()
            self._receivers.clear()
            raise
        send.setblocking(False)
        self._send, self._route, self._loop = send, route, loop
        for receiver in self._receivers:
            loop.add_reader(receiver.fileno(), self._read, receiver)

    def close(self) -> None:
        if self._loop is not None:
            for receiver in self._receivers:
                self._loop.remove_reader(receiver.fileno())
        for sock in (self._send, self._route, *self._receivers):
            if sock is not None:
                sock.close()
        self._send = self._route = self._loop = None
        self._receivers.clear()
        for future, _ in self._waiting.values():
            if not future.done():
                future.set_result(False)
        self._waiting.clear()

    def _source_for(self, address: str) -> str:
        """The source address the kernel would use towards ``address`` (no packet sent)."""
        assert self._route is not None
        self._route.connect((address, 9))
        source: str = self._route.getsockname()[0]
        return source

    def _packet(self, target: Target) -> tuple[bytes, _Key, int]:
        from scapy.layers.inet import ICMP, IP, TCP

        address = str(target.address)
        source = self._source_for(address)
        if target.method is Method.ICMP:
            sequence = next(self._sequence) & 0xFFFF
            packet = IP(src=source, dst=address) / ICMP(
                type=8, id=self._ident, seq=sequence) / (b"kuzot" + b"\0" * 3)
            return bytes(packet), ("icmp", int(target.address), self._ident, sequence), 0
        assert target.port is not None
        sport = next(self._ports)
        seq = secrets.randbits(32)
        packet = IP(src=source, dst=address) / TCP(sport=sport, dport=target.port, flags="S",
                                                     seq=seq, window=1024)
        return bytes(packet), ("tcp", int(target.address), target.port, sport), seq

    async def probe(self, target: Target, timeout: float) -> bool:
        if self._send is None or self._loop is None:
            raise RuntimeError("the transport is not open")
        data, key, seq = self._packet(target)
        if key in self._waiting:
            # A probe to the same address and port from the same source port is still out
            # (only after a thousand TCP probes to one target within one timeout): its reply
            # could not be told from ours, so this probe counts as unanswered unsent.
            return False
        future: asyncio.Future[bool] = self._loop.create_future()
        self._waiting[key] = (future, seq)
        try:
            self._send.sendto(data, (str(target.address), 0))
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except (TimeoutError, OSError):
            # OSError: the kernel refused the packet (no route, buffer full); the target
            # did not answer it either way.
            return False
        finally:
            self._waiting.pop(key, None)

    def _read(self, receiver: socket.socket) -> None:
        """Drain what is queued (at most ``_READ_BATCH`` packets per wake-up): a raw socket
        sees every packet of its protocol, and one packet per wake-up lets the queue overflow
        during a discovery burst, losing replies that did come."""
        for _ in range(_READ_BATCH):
            try:
                data = receiver.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._take(data)

    def _take(self, data: bytes) -> None:
        match = self._match(data)
        if match is None:
            return
        entry = self._waiting.get(match[0])
        if entry is None:
            return
        future, seq = entry
        if match[1] is not None and match[1] != (seq + 1) & 0xFFFFFFFF:
            return
        if not future.done():
            future.set_result(True)

    def _match(self, data: bytes) -> tuple[_Key, int | None] | None:
        """The key of the probe this packet answers and the TCP ack it carries, or None."""
        from scapy.layers.inet import ICMP, IP, TCP

        try:
            packet = IP(data)
        except Exception:  # a malformed packet from the wire is not ours
            return None
        source = int(ipaddress.IPv4Address(packet.src))
        if packet.haslayer(ICMP):
            icmp = packet[ICMP]
            if icmp.type != _ICMP_ECHO_REPLY or icmp.id != self._ident:
                return None
            return ("icmp", source, self._ident, int(icmp.seq)), None
        if packet.haslayer(TCP):
            tcp = packet[TCP]
            flags = int(tcp.flags)
            if flags & _TCP_SYN_ACK != _TCP_SYN_ACK and not flags & _TCP_RST:
                return None
            return ("tcp", source, int(tcp.sport), int(tcp.dport)), int(tcp.ack)
        return None
