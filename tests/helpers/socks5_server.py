"""A small SOCKS5 server on loopback (RFC 1928, no authentication, CONNECT), as Tor's
``SocksPort`` behaves for the probe's purposes.

It records each CONNECT as ``(address type, host, port)`` so a test can tell a name the
proxy resolved (type ``domain``: nothing was looked up on the client) from an address the
client resolved itself (``ipv4``/``ipv6``). Names resolve only through ``hosts``, and only to
loopback, so nothing leaves the machine; the censor lab runs one inside its own world
namespace (``bind`` there, ``allowed`` the world's addresses), where it plays a Tor relay
beyond the censor.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct

from tests.helpers.connect_proxy import _pipe

ATYP = {1: "ipv4", 3: "domain", 4: "ipv6"}


LOOPBACK = ("127.0.0.0/8", "::1/128")


class Socks5Server:
    def __init__(self, hosts: dict[str, str] | None = None, bind: str = "127.0.0.1",
                 port: int = 0, allowed: tuple[str, ...] = LOOPBACK) -> None:
        self.hosts = hosts or {}
        self.bind = bind
        self.allowed = tuple(ipaddress.ip_network(n) for n in allowed)
        self.connects: list[tuple[str, str, int]] = []
        self._server: asyncio.Server | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"socks5h://{self.bind}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.bind, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def _allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a name no ``hosts`` entry resolves
        return any(ip in network for network in self.allowed)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            version, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            if version != 5 or 0 not in methods:
                writer.write(b"\x05\xff")  # no acceptable method
                return
            writer.write(b"\x05\x00")
            version, command, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
            elif atyp == 4:
                host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
            elif atyp == 3:
                length = (await reader.readexactly(1))[0]
                host = (await reader.readexactly(length)).decode("ascii")
            else:
                writer.write(b"\x05\x08\x00\x01" + bytes(6))  # address type not supported
                return
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            if command != 1:
                writer.write(b"\x05\x07\x00\x01" + bytes(6))  # command not supported
                return
            self.connects.append((ATYP[atyp], host, port))
            address = self.hosts.get(host, host) if atyp == 3 else host
            if not self._allowed(address):
                writer.write(b"\x05\x02\x00\x01" + bytes(6))  # not allowed: outside ``allowed``
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(address, port)
            except OSError:
                writer.write(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
                return
            writer.write(b"\x05\x00\x00\x01" + bytes(4) + struct.pack("!H", 0))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
