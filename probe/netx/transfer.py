"""One timed HTTPS transfer to one address with an explicit SNI: the unit of a throttling test.

It composes the measured primitives (``tcp.connect``, ``tls.handshake``, ``http.get``) and adds
a byte-time curve taken from the kernel's count of received bytes (``tcpinfo``) at memoryless
random instants: exponential gaps with a 250 ms mean, bounded to [25 ms, 650 ms], as OONI's
throttling sampler. The curve starts at the TCP connect, so a throttled TLS handshake shows as
slow progress rather than silence.

The transfer stops at ``byte_limit`` bytes of response or after ``transfer_timeout`` seconds,
whichever comes first. A transfer cut by the timeout while bytes still arrive is recorded with
``failure=generic_timeout_error`` and ``x_slow=True``: it measured a rate, it did not fail.
Observation only; rates and verdicts are computed by ``probe.netx.bytetime`` and the
analysis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
from typing import Any

from probe.netx import http, tcp, tcpinfo, tls
from probe.netx.trace import Trace

Record = dict[str, Any]

MEAN_GAP = 0.25
MIN_GAP = 0.025
MAX_GAP = 0.65


def sampling_gap(rng: random.Random) -> float:
    """A memoryless (exponential) gap with a 250 ms mean, clamped to [25 ms, 650 ms]."""
    return min(MAX_GAP, max(MIN_GAP, rng.expovariate(1 / MEAN_GAP)))


class KernelSampler:
    """Samples ``tcpi_bytes_received`` of one socket in a background task.

    It keeps its own duplicate of the socket's descriptor: asyncio closes its descriptor as
    soon as the server closes the connection, and the last sample (the bytes the whole flow
    received) must still be readable then. ``close`` releases the duplicate.
    """

    def __init__(self, sock: socket.socket | tcpinfo.SockOpt | None, trace: Trace,
                 rng: random.Random) -> None:
        self.trace = trace
        self.rng = rng
        self.samples: list[list[float | int]] = []
        self._sock: socket.socket | None = None
        fileno = getattr(sock, "fileno", None)
        if fileno is not None:
            with contextlib.suppress(OSError):
                self._sock = socket.socket(fileno=os.dup(fileno()))
        self.available = tcpinfo.bytes_received(self._sock) is not None
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> int | None:
        """Take one sample now; returns the count (None where the kernel cannot say)."""
        count = tcpinfo.bytes_received(self._sock)
        if count is not None:
            self.samples.append([self.trace.now(), count])
        return count

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(sampling_gap(self.rng))
            self.sample()

    def start(self) -> None:
        if self.available:
            self.sample()
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling, take the last sample and release the duplicate descriptor."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self.sample()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def fetch(
    ip: str,
    port: int,
    *,
    sni: str,
    url: str,
    host_header: str,
    path: str,
    trace: Trace,
    context: ssl.SSLContext,
    connect_timeout: float,
    tls_timeout: float,
    transfer_timeout: float,
    byte_limit: int,
    rng: random.Random | None = None,
) -> Record:
    """Connect, handshake with ``sni`` and GET ``path``; returns the flow record.

    The record carries OONI's ``tcp_connect``, ``tls_handshakes`` and ``requests`` entries of
    this flow, the kernel curve ``samples`` (``[[t, bytes], ...]``, None-free) with
    ``curve_source``, the application's byte-time events, and the failure with its operation.
    """
    rng = rng or random.Random()
    events_before = len(trace.network_events)
    flow: Record = {
        "address": tcp.endpoint(ip, port),
        "server_name": sni,
        "url": url,
        "t0": trace.now(),
        "tcp_connect": None,
        "tls_handshake": None,
        "request": None,
        "failure": None,
        "operation": None,
        "x_slow": False,
        "request_t0": None,
        "curve_source": None,
        "samples": [],
    }
    connect_record, stream = await tcp.connect(ip, port, trace, connect_timeout)
    flow["tcp_connect"] = connect_record
    if stream is None:
        flow["failure"] = connect_record["status"]["failure"]
        flow["operation"] = "connect"
        flow["t"] = trace.now()
        return flow
    sampler = KernelSampler(stream[1].get_extra_info("socket"), trace, rng)
    sampler.start()
    try:
        tls_record, tls_stream = await tls.handshake(stream, sni, trace, tls_timeout, context)
        flow["tls_handshake"] = tls_record
        if tls_stream is None:
            flow["failure"] = tls_record["failure"]
            flow["operation"] = "tls_handshake"
            return flow
        sampler.sample()
        flow["request_t0"] = trace.now()
        request = await http.get(tls_stream, url, host_header, path, trace, transfer_timeout,
                                 body_limit=byte_limit, rng=rng)
        flow["request"] = request
        if request["failure"] is not None:
            flow["failure"] = request["failure"]
            flow["operation"] = "http_round_trip"
            flow["x_slow"] = bool(request.get("x_slow"))
        return flow
    finally:
        await sampler.stop()
        # An abortive close: a graceful TLS shutdown behind a throttle waits for the queue
        # to drain, and the bytes that would still arrive are data the volunteer pays for.
        stream[1].transport.abort()
        sampler.close()
        flow["t"] = trace.now()
        if sampler.available:
            flow["curve_source"] = "tcp_info"
            flow["samples"] = sampler.samples
        else:
            flow["curve_source"] = "application"
            flow["samples"] = [
                [e["t"], e["num_bytes"]] for e in trace.network_events[events_before:]
                if e.get("operation") == "bytes_received_cumulative"
            ]
