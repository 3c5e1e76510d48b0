"""TCP reachability of one ``HOST:PORT``: resolve the host with the system resolver, connect
to each address (at most ``max_addresses``), record every connect (OONI's ``tcp_connect``).

Observation only: the verdict is ``probe.nettests.tcp_reachability.analysis.analyze``, a pure
function over the keys recorded here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from probe.core import failures
from probe.netx import tcp
from probe.netx.trace import Trace


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """(host, port) of ``host:port`` or ``[v6]:port``; ValueError when it is neither."""
    host, sep, port = endpoint.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {endpoint!r}")
    return host, int(port)


async def resolve(host: str, port: int, timeout: float) -> tuple[list[str], str | None]:
    """The host's addresses (a literal stands for itself), or a failure string."""
    try:
        ipaddress.ip_address(host)
        return [host], None
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except Exception as exc:
        return [], failures.classify(exc)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses, None


async def measure(endpoint: str, timeout: float, max_addresses: int = 4,
                  dns_timeout: float = 4.0) -> dict[str, Any]:
    """The test keys of one endpoint (without the analysis)."""
    host, port = split_endpoint(endpoint)
    trace = Trace()
    addresses, failure = await resolve(host, port, dns_timeout)
    connects = []
    for address in addresses[:max_addresses]:
        record, stream = await tcp.connect(address, port, trace, timeout)
        await tcp.close(stream)
        connects.append(record)
    return {"host": host, "port": port, "addresses": addresses, "dns_failure": failure,
            "tcp_connect": connects}
