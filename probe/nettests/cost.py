"""What a measurement cost on the wire, from what it recorded: the overheads each kind of test
builds its estimate from (``probe.daemon.traffic`` keeps the per-day budget).

The overheads are deliberately generous, so the estimate errs towards stopping early rather
than overspending. ``exchanges`` is the estimate of a test made of DNS queries, TCP connects,
TLS handshakes and HTTP requests (web connectivity, platforms, throttling); a kind of test
that does something else gives its own (``NetTest.cost``).
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


def count(keys: dict[str, Any], name: str) -> int:
    value = keys.get(name)
    return len(value) if isinstance(value, list) else 0


def _response_bytes(request: dict[str, Any]) -> int:
    received = request.get("x_bytes_received")
    if isinstance(received, int) and received >= 0:
        return received
    response = request.get("response") or {}
    length = response.get("x_body_length") if isinstance(response, dict) else None
    return (length if isinstance(length, int) else 0) + 400


def exchanges(keys: dict[str, Any]) -> int:
    """Bytes of the DNS, TCP, TLS and HTTP exchanges ``keys`` records, and the control's answer."""
    total = DNS_QUERY * 2 * max(1, count(keys, "queries"))
    total += TCP_CONNECT * count(keys, "tcp_connect")
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
