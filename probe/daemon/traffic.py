"""The per-day data budget: how many bytes a measurement cost on the volunteer's link.

Volunteers on mobile plans pay per megabyte (OONI users ask for data caps: shared reference,
OONI section 6). The probe counts, per UTC day, the traffic of its measurements, uploads and
heartbeats; when the day's budget is spent it stops measuring sites until the next day but
keeps the connectivity ladder, heartbeats and uploads, which are small and are what shutdown
detection needs.

A measurement's traffic is estimated from what it recorded (``estimate``, a pure function):
the bytes a response actually delivered, plus per-exchange overheads for DNS, TCP, TLS and
the HTTP request, plus the control's answer. The overheads are deliberately generous, so the
estimate errs towards stopping early rather than overspending.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

DNS_QUERY = 200  # one query and its answer, with UDP/IP headers
TCP_CONNECT = 280  # SYN, SYN-ACK, ACK and the closing FIN/ACK pairs
TLS_HANDSHAKE_OK = 6000  # ClientHello and a server flight with a certificate chain
TLS_HANDSHAKE_FAILED = 800
HTTP_REQUEST = 600  # request line and headers, plus ACKs of the response
CONTROL_REQUEST = 1500  # request and HTTP framing to the control vantage
LADDER_RUNG = 300
TRACE_STEP = 1500  # a connection, the request (a ClientHello at most), an ICMP or an answer
FLOOR = 500


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts(item)


def _count(keys: dict[str, Any], name: str) -> int:
    value = keys.get(name)
    return len(value) if isinstance(value, list) else 0


def _response_bytes(request: dict[str, Any]) -> int:
    received = request.get("x_bytes_received")
    if isinstance(received, int) and received >= 0:
        return received
    response = request.get("response") or {}
    length = response.get("x_body_length") if isinstance(response, dict) else None
    return (length if isinstance(length, int) else 0) + 400


def estimate(measurement: dict[str, Any]) -> int:
    """Bytes on the wire that ``measurement`` most likely cost (upper-leaning estimate)."""
    keys = measurement.get("test_keys")
    if not isinstance(keys, dict):
        return FLOOR
    if measurement.get("test_name") == "connectivity":
        rungs = keys.get("rungs") or {}
        tried = sum(int(r.get("tried", 1)) for r in rungs.values() if isinstance(r, dict))
        return max(FLOOR, LADDER_RUNG * tried)
    if measurement.get("test_name") == "censor_trace":
        steps = _count(keys, "control_hops") + _count(keys, "trigger_hops")
        return max(FLOOR, DNS_QUERY * 2 * _count(keys, "queries") + TRACE_STEP * steps)
    total = DNS_QUERY * 2 * max(1, _count(keys, "queries"))
    total += TCP_CONNECT * _count(keys, "tcp_connect")
    for handshake in keys.get("tls_handshakes") or []:
        ok = isinstance(handshake, dict) and handshake.get("failure") is None
        total += TLS_HANDSHAKE_OK if ok else TLS_HANDSHAKE_FAILED
    # Requests may sit at the top (web_connectivity) or inside other tests' keys: count every
    # record that looks like an HTTP exchange, wherever it is.
    observed = {k: v for k, v in keys.items() if k != "control"}
    for record in _dicts(observed):
        if "request" in record and ("response" in record or "x_bytes_received" in record):
            total += HTTP_REQUEST + _response_bytes(record)
    control = keys.get("control")
    if control:
        total += CONTROL_REQUEST + len(json.dumps(control, separators=(",", ":")))
    return max(FLOOR, total)


def daily_bytes(daily_mb: float | None) -> int | None:
    return None if daily_mb is None else int(daily_mb * 1_000_000)


def utc_day(timestamp: str) -> str:
    """The day part of a "YYYY-MM-DD HH:MM:SS" timestamp."""
    return timestamp[:10]
