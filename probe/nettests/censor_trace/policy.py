"""Which blocked URL the daemon may trace, and when: pure functions, no I/O, no clock.

A censor trace (``probe.nettests.censor_trace.measure``) sends the request of a URL with increasing
IP TTL, once with the URL's name and once with a harmless one, and finds the hop where only the
first is acted on. So it says something only about blocking triggered by the name in the
request, a Host header or an SNI: the ``tls`` and ``http`` layers. A DNS or IP block makes the
harmless request fail the same way and the trace learns nothing, so none is asked for then.

The daemon asks ``candidates`` after every measurement it spools; a candidate is traced when
``may_trace`` allows it at the moment the trace job is due (the verdict may have changed by
then, and the day's count may be spent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

TRACEABLE_LAYERS = ("tls", "http")
TRACE_KEY_PREFIX = "trace:"
"""The journal keeps a trace's verdict under ``trace:<url>``, apart from the URL's own."""


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """``subject``: the target URL or the platform whose latest verdict asked for the trace;
    ``url``: what is traced; ``address``: the IPv4 address the measurement connected to
    (None: the trace resolves the name itself)."""

    subject: str
    url: str
    address: str | None = None


def trace_key(url: str) -> str:
    return TRACE_KEY_PREFIX + url


def _blocked_by_name(analysis: Any) -> bool:
    return (isinstance(analysis, dict) and analysis.get("verdict") == "blocked"
            and analysis.get("layer") in TRACEABLE_LAYERS)


def _port_of(url: str) -> int:
    scheme, _, rest = url.partition("://")
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if not authority.startswith("[") and authority.count(":") == 1:
        port = authority.rsplit(":", 1)[1]
        if port.isdigit():
            return int(port)
    return 443 if scheme == "https" else 80


def _connected_ipv4(keys: dict[str, Any], port: int) -> str | None:
    for connect in keys.get("tcp_connect") or []:
        status = connect.get("status") or {}
        ip = str(connect.get("ip") or "")
        if status.get("success") and connect.get("port") == port and ip and ":" not in ip:
            return ip
    return None


def candidates(measurement: dict[str, Any], platforms: tuple[str, ...] = ()) -> list[TraceRequest]:
    """What a measurement asks to trace, best first (empty unless blocked by name).

    A web connectivity measurement asks for its own URL, at the address it connected to; a
    platform measurement (its ``x_platform`` among ``platforms``) asks for each web endpoint
    blocked by name, in the order of the platforms file.
    """
    keys = measurement.get("test_keys")
    if not isinstance(keys, dict):
        return []
    test_name = measurement.get("test_name")
    url = measurement.get("input")
    if test_name == "web_connectivity" and isinstance(url, str):
        if not _blocked_by_name(keys.get("analysis")):
            return []
        return [TraceRequest(url, url, _connected_ipv4(keys, _port_of(url)))]
    platform = keys.get("x_platform")
    if platform not in platforms or (keys.get("analysis") or {}).get("verdict") != "blocked":
        return []
    return [TraceRequest(str(platform), str(endpoint["target"]))
            for endpoint in keys.get("x_endpoints") or []
            if endpoint.get("kind") == "web" and _blocked_by_name(endpoint.get("analysis"))]


def may_trace(last_traced: datetime | None, now: datetime, interval: float,
              traced_today: int, daily_max: int) -> bool:
    """At most one trace of a URL per ``interval`` and ``daily_max`` traces per day. A last
    trace in the future was stamped by a clock that has since been set back (a device without
    a real-time clock): it tells nothing, and counts as no trace."""
    if traced_today >= daily_max:
        return False
    if last_traced is None:
        return True
    elapsed = (now - last_traced).total_seconds()
    return elapsed < 0 or elapsed >= interval


def day_count(saved: str | None, day: str) -> int:
    """Traces already run on ``day`` from the journal's ``"<day> <count>"`` (0 otherwise)."""
    if not saved:
        return 0
    saved_day, _, count = saved.partition(" ")
    return int(count) if saved_day == day and count.isdigit() else 0
