"""Byte relays for the lab: a TLS front for the collector and the ISP's transparent proxy."""

from __future__ import annotations

import asyncio
import contextlib


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close the other side."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Relay both directions until both are done, then close both."""
    try:
        await asyncio.gather(pipe(client[0], upstream[1]), pipe(upstream[0], client[1]))
    finally:
        for writer in (client[1], upstream[1]):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def sni_of(client_hello: bytes) -> str | None:
    """The server name of a TLS ClientHello record, or None (RFC 8446 4.1.2, RFC 6066 3)."""
    try:
        if client_hello[0] != 0x16 or client_hello[5] != 0x01:
            return None
        at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        at += 1 + client_hello[at]  # session id
        at += 2 + int.from_bytes(client_hello[at:at + 2], "big")  # cipher suites
        at += 1 + client_hello[at]  # compression methods
        end = at + 2 + int.from_bytes(client_hello[at:at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(client_hello[at:at + 2], "big")
            size = int.from_bytes(client_hello[at + 2:at + 4], "big")
            if kind == 0:  # server_name: list length, name type, name length, name
                name_length = int.from_bytes(client_hello[at + 7:at + 9], "big")
                return client_hello[at + 9:at + 9 + name_length].decode("ascii").lower()
            at += 4 + size
    except (IndexError, UnicodeDecodeError):
        return None
    return None


def host_of(request_head: bytes) -> str | None:
    """The Host header of an HTTP/1.1 request head, without port, or None."""
    for line in request_head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return value.strip().decode("latin-1").rsplit(":", 1)[0].lower()
    return None


async def read_first(reader: asyncio.StreamReader, tls: bool, timeout: float = 5.0) -> bytes:
    """The ClientHello record (``tls``) or the request head, enough to learn the host."""
    async with asyncio.timeout(timeout):
        if tls:
            header = await reader.readexactly(5)
            return header + await reader.readexactly(int.from_bytes(header[3:5], "big"))
        return await reader.readuntil(b"\r\n\r\n")
