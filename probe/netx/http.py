"""A small HTTP/1.1 client that runs over a stream this package already measured.

Why not aiohttp here: web connectivity must fetch a page over *the* TCP/TLS connection it just
measured to one specific address, and must see every byte as it arrives (byte-time samples,
truncation, a reset in the middle of a body). A GET with ``Connection: close`` is simple enough
to do directly; the collector and uploads still use aiohttp.

The record is OONI's df-001 ``requests`` entry: the response ``body`` as OONI stores it (a
string when the bytes are UTF-8, else ``{"format": "base64", "data": ...}``), cut at OONI's
512 KiB snapshot with ``body_is_truncated``, ``headers`` and ``headers_list``, and the
request's ``network`` and ``address``. What Kuzot derives from the body (``x_body_length``,
``x_body_sha256``, ``x_title``) and its timings carry OONI's extension prefix ``x_``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from typing import Any

from probe import bytetime, failures
from probe.netx import tcp
from probe.netx.trace import Trace
from probe.wire import ooni_body

Record = dict[str, Any]

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US;q=0.8,en;q=0.5",
    "User-Agent": USER_AGENT,
}
MAX_BODY = 1 << 19  # 512 KiB, as OONI's body snapshot
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def extract_title(body: bytes) -> str:
    match = _TITLE.search(body[:MAX_BODY])
    if not match:
        return ""
    return " ".join(match.group(1).decode("utf-8", "replace").split())[:256]


class _Sampler:
    """Records cumulative bytes received at memoryless random intervals (mean 250 ms).

    Exponential gaps, bounded to [25 ms, 650 ms] as OONI's throttling sampler does, avoid
    aliasing with a policer's periodic refill.
    """

    def __init__(self, trace: Trace, address: str, rng: random.Random) -> None:
        self.trace = trace
        self.address = address
        self.rng = rng
        self.received = 0
        self.samples: list[tuple[float, int]] = []
        self.next_at = trace.now() + self._gap()

    def _gap(self) -> float:
        return min(0.65, max(0.025, self.rng.expovariate(1 / 0.25)))

    def add(self, count: int) -> None:
        self.received += count
        now = self.trace.now()
        if now >= self.next_at:
            self.samples.append((now, self.received))
            self.next_at = now + self._gap()

    def goodput(self, start: float) -> float | None:
        """Bits per second over the first 512 KiB since ``start`` (see ``probe.bytetime``)."""
        rate = bytetime.goodput(bytetime.since(self.samples, start))
        return None if rate is None else round(rate)

    def finish(self) -> None:
        self.samples.append((self.trace.now(), self.received))
        for t, n in self.samples:
            self.trace.network_events.append(
                {"operation": "bytes_received_cumulative", "address": self.address,
                 "num_bytes": n, "t": t}
            )


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], sampler: _Sampler, limit: int
) -> tuple[bytes, bool]:
    """Read the body per Content-Length, chunked encoding or until EOF; truncate at limit."""
    body = bytearray()
    truncated = False
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise asyncio.IncompleteReadError(bytes(body), None)
            sampler.add(len(size_line))
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            chunk = await reader.readexactly(size + 2)
            sampler.add(len(chunk))
            body += chunk[:-2]
            if len(body) >= limit:
                truncated = True
                break
        return bytes(body[:limit]), truncated
    expected = int(headers["content-length"]) if "content-length" in headers else None
    while expected is None or len(body) < expected:
        data = await reader.read(65536)
        if not data:
            if expected is not None:
                raise asyncio.IncompleteReadError(bytes(body), expected)
            break
        sampler.add(len(data))
        body += data
        if len(body) >= limit:
            truncated = len(body) > limit or (expected is not None and expected > limit)
            break
    return bytes(body[:limit]), truncated


async def get(
    stream: tcp.Stream,
    url: str,
    host: str,
    path: str,
    trace: Trace,
    timeout: float,
    body_limit: int = MAX_BODY,
    rng: random.Random | None = None,
) -> Record:
    """Send one GET over ``stream`` and read the response; returns an OONI ``requests`` entry.

    ``timeout`` bounds the whole exchange. A timeout while bytes are still arriving is
    recorded with ``failure=generic_timeout_error`` and ``x_slow=True`` so throttling is not
    mistaken for a plain blackhole.
    """
    reader, writer = stream
    peer = writer.get_extra_info("peername") or ("", 0)
    address = tcp.endpoint(str(peer[0]), int(peer[1]))
    sampler = _Sampler(trace, address, rng or random.Random())
    headers_out = {"Host": host, **REQUEST_HEADERS, "Accept-Encoding": "identity",
                   "Connection": "close"}
    record: Record = {
        "network": "tcp",
        "address": address,
        "request": {"method": "GET", "url": url, "headers": dict(headers_out),
                    "headers_list": [[k, v] for k, v in headers_out.items()],
                    "body": "", "body_is_truncated": False},
        "response": None,
        "failure": None,
        "x_operation": None,
        "t0": trace.now(),
        "x_ttfb": None,
    }
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers_out.items()]
    # Where a failure happens: before the end of the headers it is the round trip, after it
    # the body read (a reset in the middle of a page is not a refused request).
    operation = failures.OP_HTTP_ROUND_TRIP
    try:
        async with asyncio.timeout(timeout):
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise EOFError("connection closed before the response")
            record["x_ttfb"] = trace.now()
            sampler.add(len(status_line))
            parts = status_line.decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ValueError("malformed HTTP status line")
            code = int(parts[1])
            headers: dict[str, str] = {}
            header_list: list[list[str]] = []
            while True:
                line = await reader.readline()
                if not line:
                    raise EOFError("connection closed inside the headers")
                sampler.add(len(line))
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
                header_list.append([name.strip(), value.strip()])
            operation = failures.OP_READ
            body, truncated = await _read_body(reader, headers, sampler, body_limit)
    except Exception as exc:
        failure = failures.classify(exc)
        if isinstance(exc, ValueError) and failure.startswith(failures.UNKNOWN_PREFIX):
            failure = failures.unknown(f"http protocol error: {exc}")
        record["failure"] = failure
        record["x_operation"] = operation
        record["x_slow"] = failure == failures.TIMEOUT and sampler.received > 0
        record["x_bytes_received"] = sampler.received
        sampler.finish()
        record["x_goodput_bps"] = sampler.goodput(record["t0"])
        record["t"] = trace.now()
        return record
    sampler.finish()
    record["x_goodput_bps"] = sampler.goodput(record["t0"])
    record["t"] = trace.now()
    record["response"] = {
        "code": code,
        "headers": {k: v for k, v in header_list},
        "headers_list": header_list,
        "body": ooni_body(body, truncated),
        "body_is_truncated": truncated,
        "x_body_length": len(body),
        "x_body_sha256": hashlib.sha256(body).hexdigest(),
        "x_title": extract_title(body),
    }
    record["x_bytes_received"] = sampler.received
    return record
