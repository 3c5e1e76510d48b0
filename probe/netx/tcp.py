"""TCP connect to one address, timed, with the failure classified (OONI df-005).

The step that failed is Kuzot's own key, so it carries OONI's extension prefix:
``status.x_operation``."""

from __future__ import annotations

import asyncio
from typing import Any

from probe.core import failures
from probe.netx.trace import Trace

Record = dict[str, Any]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def endpoint(ip: str, port: int) -> str:
    """``ip:port``, with IPv6 addresses in brackets, as OONI spells endpoints."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def connect(
    ip: str, port: int, trace: Trace, timeout: float, source: str | None = None
) -> tuple[Record, Stream | None]:
    """Open a TCP connection; returns the ``tcp_connect`` record and the stream on success.

    ``source`` binds the local address (a probe with several uplinks measures one of them).
    """
    t0 = trace.now()
    record: Record = {
        "ip": ip,
        "port": port,
        "status": {"success": False, "failure": None, "x_operation": None, "blocked": None},
        "t0": t0,
    }
    try:
        async with asyncio.timeout(timeout):
            stream = await asyncio.open_connection(
                ip, port, limit=1 << 20, local_addr=(source, 0) if source else None)
    except Exception as exc:
        record["status"]["failure"] = failures.classify(exc)
        record["status"]["x_operation"] = failures.OP_CONNECT
        record["t"] = trace.now()
        return record, None
    record["status"]["success"] = True
    record["t"] = trace.now()
    return record, stream


async def close(stream: Stream | None) -> None:
    """Close a stream without letting a reset during close escape as an exception."""
    if stream is None:
        return
    writer = stream[1]
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except Exception:  # a peer reset on close says nothing more about reachability
        return
