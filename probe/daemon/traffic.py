"""The per-day data budget: how many bytes a measurement cost on the volunteer's link.

Volunteers on mobile plans pay per megabyte (OONI users ask for data caps: shared reference,
OONI section 6). The probe counts, per UTC day, the traffic of its measurements, uploads and
heartbeats; when the day's budget is spent it stops measuring sites until the next day but
keeps the connectivity ladder, heartbeats and uploads, which are small and are what shutdown
detection needs.

A measurement's traffic is estimated from what it recorded (``estimate``, a pure function):
the bytes a response actually delivered, plus per-exchange overheads for DNS, TCP, TLS and
the HTTP request, plus the control's answer (``probe.nettests.cost``); a kind of test made of
other exchanges (the ladder's rungs, a trace's steps) gives its own estimate. The overheads are
deliberately generous, so the estimate errs towards stopping early rather than overspending.
"""

from __future__ import annotations

from typing import Any

from probe.nettests.cost import (
    CONTROL_REQUEST,
    DNS_QUERY,
    FLOOR,
    HTTP_REQUEST,
    LADDER_RUNG,
    TCP_CONNECT,
    TLS_HANDSHAKE_FAILED,
    TLS_HANDSHAKE_OK,
    TRACE_STEP,
    exchanges,
)
from probe.nettests.registry import by_test_name

# The overheads, named where the budget is kept too.
__all__ = ["CONTROL_REQUEST", "DNS_QUERY", "FLOOR", "HTTP_REQUEST", "LADDER_RUNG", "TCP_CONNECT",
           "TLS_HANDSHAKE_FAILED", "TLS_HANDSHAKE_OK", "TRACE_STEP", "daily_bytes", "estimate",
           "utc_day"]


def estimate(measurement: dict[str, Any]) -> int:
    """Bytes on the wire that ``measurement`` most likely cost (upper-leaning estimate): its
    kind of test's own estimate (``NetTest.cost``), else that of its DNS, TCP, TLS and HTTP
    exchanges (``probe.nettests.cost``)."""
    keys = measurement.get("test_keys")
    if not isinstance(keys, dict):
        return FLOOR
    kind = by_test_name(str(measurement.get("test_name")))
    own = kind.cost(keys) if kind is not None else None
    return max(FLOOR, own if own is not None else exchanges(keys))


def daily_bytes(daily_mb: float | None) -> int | None:
    return None if daily_mb is None else int(daily_mb * 1_000_000)


def utc_day(timestamp: str) -> str:
    """The day part of a "YYYY-MM-DD HH:MM:SS" timestamp."""
    return timestamp[:10]
