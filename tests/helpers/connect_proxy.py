"""A small HTTP CONNECT proxy on loopback, for tests of the probe's proxy path.

It tunnels each ``CONNECT host:port`` to that address and records the targets it was asked
for, so a test can check that a request really went through it.
"""

from __future__ import annotations

import asyncio
import contextlib


class ConnectProxy:
    def __init__(self, hosts: dict[str, str] | None = None) -> None:
        self.hosts = hosts or {}  # name -> loopback address: the proxy resolves, not DNS
        self.targets: list[str] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            self.targets.append(target)
            host, _, port = target.rpartition(":")
            address = self.hosts.get(host, host)
            if not address.startswith("127."):
                writer.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # loopback only
                return
            up_reader, up_writer = await asyncio.open_connection(address, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()
