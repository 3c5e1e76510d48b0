"""A small HTTP/1.1 client that runs over a stream this package already measured.

Why not aiohttp here: web connectivity must fetch a page over *the* TCP/TLS connection it just
measured to one specific address, and must see every byte as it arrives (byte-time samples,
truncation, a reset in the middle of a body). The collector and uploads still use aiohttp.

The record is OONI's df-001 ``requests`` entry: the response ``body`` as OONI stores it (a
string when the bytes are UTF-8, else ``{"format": "base64", "data": ...}``), cut at OONI's
512 KiB snapshot with ``body_is_truncated``, ``headers`` and ``headers_list``, and the
request's ``network`` and ``address``. What Kuzot derives from the body (``x_body_length``,
``x_body_sha256``, ``x_title``) and its timings carry OONI's extension prefix ``x_``.

The response is parsed by h11, a sans-IO HTTP/1.1 parser: this module reads the socket itself
(so timings and byte-time samples are the probe's own) and feeds the bytes to h11. h11 replaced
a hand-written parser because a site, a blockpage server or a censor's middlebox can send
anything, and a parser that buffers a header block or a chunk before checking it grows without
bound (an endless header line, a chunk size of 2**64-1). h11 buffers at most one incomplete
header block (``Limits.header_bytes``) and streams chunked data, whatever size a chunk declares.

Every limit is in ``Limits`` and ends the exchange as a failure string in the record, never as
an exception: the measurement is always produced. What is *recorded* of the headers is capped
separately (``Limits.recorded_*``), so that even a chain of ten redirects with enormous headers
stays far below the collector's 2 MiB document limit; ``x_headers_truncated`` says how many
header lines were dropped or shortened. (The bodies of one measurement are bounded together by
``probe.nettests.web_connectivity.measure.bound_bodies``.)
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

import h11

from probe.core import failures
from probe.core.wire import ooni_body
from probe.netx import bytetime, tcp
from probe.netx.trace import Trace

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
READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Limits:
    """What one response may cost, and what of it is recorded.

    ``header_bytes``: the status line and header block (and a chunk header or trailer) as
    buffered before parsing; 256 KiB, the limit of Chromium (``ERR_RESPONSE_HEADERS_TOO_BIG``),
    so a page a browser shows is never refused here. Over it: ``http_response_headers_too_large``.
    ``header_count``: header lines in one response; over it: ``http_too_many_response_headers``.
    ``line_length``: one header line (name and value); over it:
    ``http_response_header_line_too_long``.
    Chunk size: never buffered. h11 accepts a chunk-size field of at most 20 hex digits (a
    longer one is a protocol error) and hands over chunk data as it arrives, so a chunk that
    declares 0xFFFFFFFFFFFFFFFF bytes costs what actually arrives, up to the body snapshot.
    ``body_snapshot``: bytes of body kept (OONI's 512 KiB); reading stops there and the
    response says ``body_is_truncated``. ``informational``: 1xx responses skipped before the
    final one. Redirects are followed by the callers, at most ten (OONI's limit).
    ``recorded_headers``, ``recorded_value_length`` and ``recorded_header_bytes`` cap what
    lands in the measurement: at most 100 header lines, each value cut at 2 KiB, 16 KiB in all.
    ``Location`` is the exception, since redirects are followed from the record: it is always
    kept, cut at ``location_length`` + 1 characters, so that a longer one is still seen as too
    long (and refused) rather than followed cut short. 8 KiB: nginx refuses a longer request
    line by default (414), so a longer redirect could not be fetched from most servers anyway.
    """

    header_bytes: int = 256 * 1024
    header_count: int = 1000
    line_length: int = 64 * 1024
    body_snapshot: int = MAX_BODY
    informational: int = 8
    recorded_headers: int = 100
    recorded_value_length: int = 2048
    recorded_header_bytes: int = 16 * 1024
    location_length: int = 8 * 1024


DEFAULT_LIMITS = Limits()


class LimitExceeded(Exception):
    """A response went over one of ``Limits``; ``failure`` is its failure string."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


# Two bounded searches rather than one lazy ``<title>(.*?)</title>``: on a hostile page with
# thousands of unclosed ``<title>`` tags that pattern rescans the rest of the body from each.
_TITLE_OPEN = re.compile(rb"<title[^>]{0,256}>", re.IGNORECASE)
_TITLE_CLOSE = re.compile(rb"</title>", re.IGNORECASE)
_TITLE_SCAN = 65536


def extract_title(body: bytes) -> str:
    opening = _TITLE_OPEN.search(body, 0, MAX_BODY)
    if not opening:
        return ""
    closing = _TITLE_CLOSE.search(body, opening.end(), opening.end() + _TITLE_SCAN)
    if not closing:
        return ""
    text = body[opening.end():closing.start()]
    return " ".join(text.decode("utf-8", "replace").split())[:256]


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
        """Bits per second over the first 512 KiB since ``start`` (see
        ``probe.netx.bytetime``)."""
        rate = bytetime.goodput(bytetime.since(self.samples, start))
        return None if rate is None else round(rate)

    def finish(self) -> None:
        self.samples.append((self.trace.now(), self.received))
        for t, n in self.samples:
            self.trace.network_events.append(
                {"operation": "bytes_received_cumulative", "address": self.address,
                 "num_bytes": n, "t": t}
            )


def _check_headers(headers: list[tuple[bytes, bytes]], limits: Limits) -> None:
    if len(headers) > limits.header_count:
        raise LimitExceeded(failures.HTTP_TOO_MANY_HEADERS)
    for name, value in headers:
        if len(name) + len(value) + 2 > limits.line_length:
            raise LimitExceeded(failures.HTTP_HEADER_LINE_TOO_LONG)


def record_headers(
    headers: list[tuple[bytes, bytes]], limits: Limits = DEFAULT_LIMITS
) -> tuple[list[list[str]], int]:
    """The header lines as recorded (capped by ``limits``) and how many were cut or dropped."""
    out: list[list[str]] = []
    used = cut = 0
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")[: limits.recorded_value_length]
        value = raw_value.decode("latin-1")
        if name.lower() == "location":
            out.append([name, value[: limits.location_length + 1]])
            continue
        if len(out) >= limits.recorded_headers:
            cut += 1
            continue
        if len(value) > limits.recorded_value_length:
            value = value[: limits.recorded_value_length]
            cut += 1
        if used + len(name) + len(value) > limits.recorded_header_bytes:
            cut += 1
            continue
        used += len(name) + len(value)
        out.append([name, value])
    return out, cut


def _protocol_failure(exc: h11.RemoteProtocolError) -> str:
    """A bounded failure string for a response h11 refused; the offending bytes are not kept."""
    if exc.error_status_hint == 431:  # h11's "Receive buffer too long"
        return failures.HTTP_HEADERS_TOO_LARGE
    reason = str(exc).split(":", 1)[0][:100]
    return failures.unknown(f"http protocol error: {reason}")


def _head_end(buffer: bytearray, start: int) -> int:
    """The index just past the blank line that ends a response head, or -1."""
    ends = [i + n for i, n in ((buffer.find(b"\n\r\n", start), 3),
                               (buffer.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else -1


class _Response:
    """Feeds what the socket delivers into h11 and counts every byte for the sampler.

    The header lines of each response head are counted on the raw bytes before h11 sees the
    complete head: h11 turns a head into one object per header, and 256 KiB of four-byte lines
    would otherwise cost some 18 MB before ``Limits.header_count`` could refuse it.
    """

    def __init__(self, reader: asyncio.StreamReader, sampler: _Sampler, trace: Trace,
                 record: Record, limits: Limits) -> None:
        self.reader = reader
        self.sampler = sampler
        self.trace = trace
        self.record = record
        self.eof = False
        self.max_lines = limits.header_count + 2  # and the status line and the blank line
        self.raw_head = bytearray()
        self.scanned = 0
        self.lines = 0
        self.counting = True
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=limits.header_bytes)
        # h11 needs to have seen the request to expect a response; the bytes on the wire are
        # written by ``get`` so that they stay exactly what a censor sees.
        self.conn.send(h11.Request(method="GET", target="/",
                                   headers=[("Host", "probe"), ("Connection", "close")]))
        self.conn.send(h11.EndOfMessage())

    async def next_event(self) -> Any:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError:
                if self.eof:
                    raise EOFError("connection closed inside the response") from None
                raise
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_SIZE)
            if data:
                if self.record["x_ttfb"] is None:
                    self.record["x_ttfb"] = self.trace.now()
                self.sampler.add(len(data))
                self._count_lines(data)
            else:
                self.eof = True
            self.conn.receive_data(data)

    def _count_lines(self, data: bytes) -> None:
        """Refuse a head with too many lines as soon as they arrive (see the class doc)."""
        if not self.counting:
            return
        self.raw_head += data
        while True:
            # Each byte is scanned once, whatever the server's pace (a drip of one byte per
            # segment must not make this quadratic).
            end = _head_end(self.raw_head, max(0, self.scanned - 2))
            stop = end if end >= 0 else len(self.raw_head)
            self.lines += self.raw_head.count(b"\n", self.scanned, stop)
            self.scanned = stop
            if self.lines > self.max_lines:
                raise LimitExceeded(failures.HTTP_TOO_MANY_HEADERS)
            if end < 0:
                return
            informational = self.raw_head[9:10] == b"1"  # "HTTP/1.1 1xx": another head follows
            del self.raw_head[:end]
            self.scanned = self.lines = 0
            if not informational:
                self.counting = False
                self.raw_head = bytearray()
                return

    async def head(self, limits: Limits) -> h11.Response:
        for _ in range(limits.informational + 1):
            event = await self.next_event()
            if isinstance(event, h11.ConnectionClosed):
                raise EOFError("connection closed before the response")
            if isinstance(event, h11.Response):
                return event
        raise LimitExceeded(failures.unknown("http protocol error: too many 1xx responses"))

    async def body(self, limit: int) -> tuple[bytes, bool]:
        """The body up to ``limit`` bytes and whether there was more (reading stops there)."""
        body = bytearray()
        while True:
            event = await self.next_event()
            if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return bytes(body), False
            if not isinstance(event, h11.Data):
                continue
            room = limit - len(body)
            body += event.data[:room]
            if len(event.data) > room:
                return bytes(body), True
            if len(body) >= limit:
                # Exactly at the limit: the message may be complete already (no read needed).
                after = self.conn.next_event()
                done = isinstance(after, h11.EndOfMessage | h11.ConnectionClosed)
                return bytes(body), not done


async def get(
    stream: tcp.Stream,
    url: str,
    host: str,
    path: str,
    trace: Trace,
    timeout: float,
    body_limit: int = MAX_BODY,
    rng: random.Random | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Record:
    """Send one GET over ``stream`` and read the response; returns an OONI ``requests`` entry.

    ``timeout`` bounds the whole exchange. A timeout while bytes are still arriving is
    recorded with ``failure=generic_timeout_error`` and ``x_slow=True`` so throttling is not
    mistaken for a plain blackhole. ``body_limit`` is the body snapshot (``limits`` has the
    rest); a response over a limit is a failure in the record, never an exception.
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
    response = _Response(reader, sampler, trace, record, limits)
    try:
        async with asyncio.timeout(timeout):
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            head = await response.head(limits)
            header_lines = list(head.headers.raw_items())
            _check_headers(header_lines, limits)
            code = head.status_code
            operation = failures.OP_READ
            body, truncated = await response.body(body_limit)
    except Exception as exc:
        if isinstance(exc, LimitExceeded):
            failure = exc.failure
        elif isinstance(exc, h11.RemoteProtocolError):
            failure = _protocol_failure(exc)
        else:
            failure = failures.classify(exc)
            if isinstance(exc, ValueError) and failure.startswith(failures.UNKNOWN_PREFIX):
                failure = failures.unknown(f"http protocol error: {exc}"[:200])
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
    header_list, cut = record_headers(header_lines, limits)
    record["response"] = {
        "code": code,
        "headers": {k: v for k, v in header_list},
        "headers_list": header_list,
        "body": ooni_body(body, truncated),
        "body_is_truncated": truncated,
        "x_body_length": len(body),
        "x_body_sha256": hashlib.sha256(body).hexdigest(),
        "x_title": extract_title(body),
        "x_headers_truncated": cut,
    }
    record["x_bytes_received"] = sampler.received
    return record
