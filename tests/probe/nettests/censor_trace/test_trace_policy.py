"""Which blocked URL the daemon may trace, and when: the pure rules on tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from probe.nettests.censor_trace.policy import TraceRequest, candidates, day_count, may_trace

NOW = datetime(2026, 5, 9, 12, 0, tzinfo=UTC)


def web(url: str, verdict: str, layer: str | None, connects: list[tuple[str, int, bool]]
        ) -> dict[str, Any]:
    return {"test_name": "web_connectivity", "input": url, "test_keys": {
        "analysis": {"verdict": verdict, "layer": layer},
        "tcp_connect": [{"ip": ip, "port": port, "status": {"success": ok}}
                        for ip, port, ok in connects]}}


def platform(name: str, verdict: str, endpoints: list[tuple[str, str, str, str | None]]
             ) -> dict[str, Any]:
    return {"test_name": "platform", "input": name, "test_keys": {
        "x_platform": name, "analysis": {"verdict": verdict},
        "x_endpoints": [{"kind": kind, "target": target,
                         "analysis": {"verdict": result, "layer": layer}}
                        for kind, target, result, layer in endpoints]}}


@pytest.mark.parametrize(("measurement", "expected"), [
    # Blocked by SNI after a connect: traced at the IPv4 address that answered on its port.
    (web("https://kloop.kg/", "blocked", "tls",
         [("2a00::1", 443, True), ("10.0.0.9", 80, True), ("46.36.200.10", 443, True)]),
     [TraceRequest("https://kloop.kg/", "https://kloop.kg/", "46.36.200.10")]),
    (web("http://kloop.kg:8080/x", "blocked", "http", [("46.36.200.10", 8080, True)]),
     [TraceRequest("http://kloop.kg:8080/x", "http://kloop.kg:8080/x", "46.36.200.10")]),
    # No working IPv4 connect: the trace resolves the name itself.
    (web("https://kloop.kg/", "blocked", "tls", [("46.36.200.10", 443, False)]),
     [TraceRequest("https://kloop.kg/", "https://kloop.kg/", None)]),
    # DNS and IP blocks: the harmless name would fail the same way; nothing to locate.
    (web("https://kloop.kg/", "blocked", "dns", []), []),
    (web("https://kloop.kg/", "blocked", "tcp", [("46.36.200.10", 443, False)]), []),
    (web("https://kloop.kg/", "ok", None, [("46.36.200.10", 443, True)]), []),
    (web("https://kloop.kg/", "down", "tls", [("46.36.200.10", 443, True)]), []),
    # A platform: its web endpoints blocked by name, in the file's order; not its addresses.
    (platform("tiktok", "blocked", [
        ("web", "https://www.tiktok.com/", "ok", None),
        ("reachability", "149.154.175.50", "blocked", "tcp"),
        ("web", "https://api.tiktokv.com/", "blocked", "tls"),
        ("web", "https://v16m.tiktokcdn.com/", "blocked", "http")]),
     [TraceRequest("tiktok", "https://api.tiktokv.com/"),
      TraceRequest("tiktok", "https://v16m.tiktokcdn.com/")]),
    (platform("tiktok", "ok", [("web", "https://www.tiktok.com/", "ok", None)]), []),
    # A platform the daemon does not check (or another test) asks for nothing.
    (platform("myspace", "blocked", [("web", "https://myspace.com/", "blocked", "tls")]), []),
    ({"test_name": "censor_trace", "input": "https://kloop.kg/",
      "test_keys": {"analysis": {"verdict": "blocked", "layer": "tls"}}}, []),
    ({"test_name": "web_connectivity", "input": "https://kloop.kg/"}, []),
])
def test_candidates(measurement: dict[str, Any], expected: list[TraceRequest]) -> None:
    assert candidates(measurement, ("tiktok", "telegram")) == expected


@pytest.mark.parametrize(("last", "today", "allowed"), [
    (None, 0, True),
    (NOW - timedelta(hours=6), 0, True),
    (NOW - timedelta(hours=5, minutes=59), 0, False),
    (None, 12, False),  # the day's traces are spent
    (NOW - timedelta(days=2), 12, False),
    # Stamped by a clock since set back: no evidence of a recent trace.
    (NOW + timedelta(days=3), 0, True),
])
def test_may_trace(last: datetime | None, today: int, allowed: bool) -> None:
    assert may_trace(last, NOW, 6 * 3600.0, today, 12) is allowed


@pytest.mark.parametrize(("saved", "count"), [
    (None, 0), ("", 0), ("2026-05-09 3", 3), ("2026-05-08 7", 0), ("2026-05-09 x", 0),
])
def test_day_count(saved: str | None, count: int) -> None:
    assert day_count(saved, "2026-05-09") == count
