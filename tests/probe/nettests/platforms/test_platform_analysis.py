"""Per-endpoint, per-group and per-platform verdicts, and OONI's im keys, on tables."""

from __future__ import annotations

from typing import Any

import pytest

from probe.nettests.platforms import analysis as pa

Record = dict[str, Any]
NO_CONTROL = "unknown_failure: no control configured"


def query(*answers: str, failure: str | None = None, late: list[str] | None = None) -> Record:
    record: Record = {"engine": "getaddrinfo", "hostname": "e1.whatsapp.net",
                      "answers": [{"ipv4": a} for a in answers], "failure": failure}
    if late is not None:
        record["x_late_answers"] = [{"answers": [{"ipv4": a} for a in late],
                                   "identical": False}]
    return record


def connect(ip: str, port: int, failure: str | None = None) -> Record:
    return {"ip": ip, "port": port, "status": {"success": failure is None, "failure": failure}}


def control(addrs: list[str] | None = None, tcp: dict[str, bool] | None = None,
            dns_failure: str | None = None, http_status: int | None = None,
            http_failure: str | None = None) -> Record:
    return {"dns": {"failure": dns_failure, "addrs": addrs or []},
            "tcp_connect": {ep: {"status": ok, "failure": None if ok else "connection_reset"}
                            for ep, ok in (tcp or {}).items()},
            "http_request": {"status_code": http_status, "failure": http_failure},
            "ip_info": {}}


def keys(queries: list[Record], connects: list[Record], ctrl: Record | None,
         requests: list[Record] | None = None) -> Record:
    return {"queries": queries, "tcp_connect": connects, "requests": requests or [],
            "tls_handshakes": [], "control": ctrl or {},
            "control_failure": None if ctrl else NO_CONTROL}


A, B, SPOOF = "31.13.72.1", "31.13.72.2", "91.201.40.7"
OK_CONTROL = control([A], {f"{A}:443": True})

ENDPOINT_CASES = [
    ("connects, control agrees", keys([query(A)], [connect(A, 443)], OK_CONTROL), (),
     "connect", ("ok", None, None)),
    ("connects, no control", keys([query(A)], [connect(A, 443)], None), (), "connect",
     ("ok", None, None)),
    ("nxdomain at probe only", keys([query(failure="dns_nxdomain_error")], [], OK_CONTROL), (),
     "connect", ("blocked", "dns", "nxdomain")),
    ("nxdomain at both", keys([query(failure="dns_nxdomain_error")], [],
                              control(dns_failure="dns_nxdomain_error")), (), "connect",
     ("down", "dns", "nxdomain")),
    ("nxdomain, no control", keys([query(failure="dns_nxdomain_error")], [], None), (),
     "connect", ("inconclusive", "dns", "nxdomain")),
    ("bogon answer", keys([query("127.0.0.1")], [connect("127.0.0.1", 443, "connection_refused")],
                          OK_CONTROL), (), "connect", ("blocked", "dns", "bogon")),
    ("injected answer", keys([query(A, late=[SPOOF])], [connect(A, 443)], OK_CONTROL), (),
     "connect", ("blocked", "dns", "injected")),
    ("spoofed answer connects to a decoy",
     keys([query(SPOOF)], [connect(SPOOF, 443)], OK_CONTROL), (), "connect",
     ("blocked", "dns", "spoofed")),
    ("answer outside networks, no control",
     keys([query("93.184.216.34")], [connect("93.184.216.34", 443)], None),
     ("31.13.64.0/18",), "connect", ("blocked", "dns", "spoofed")),
    ("answer inside networks, control differs (CDN)",
     keys([query(B)], [connect(B, 443)], control(["31.13.80.1"], {})), ("31.13.64.0/18",),
     "connect", ("ok", None, None)),
    ("ip blocked: timeout, control connects",
     keys([], [connect(A, 443, "generic_timeout_error")], OK_CONTROL), (), "connect",
     ("blocked", "tcp", "timeout")),
    ("host down: both fail", keys([], [connect(A, 443, "connection_refused")],
                                  control([A], {f"{A}:443": False})), (), "connect",
     ("down", "tcp", "refused")),
    ("tcp fails, no control", keys([], [connect(A, 443, "generic_timeout_error")], None), (),
     "connect", ("inconclusive", "tcp", "timeout")),
    ("tcp fails, control has no data for it",
     keys([], [connect(A, 443, "generic_timeout_error")], control([A], {})), (), "connect",
     ("inconclusive", "tcp", "timeout")),
    ("one port of two works", keys([], [connect(A, 443, "generic_timeout_error"),
                                        connect(A, 5222)], OK_CONTROL), (), "connect",
     ("ok", None, None)),
    ("http exchange reset, control fetched",
     keys([], [connect(A, 80)], control([], {f"{A}:80": True}, http_status=200),
          [{"response": None, "failure": "connection_reset"}]), (), "http",
     ("blocked", "http", "reset")),
    ("http exchange answered", keys([], [connect(A, 80)], OK_CONTROL,
                                    [{"response": {"code": 501}, "failure": None}]), (), "http",
     ("ok", None, None)),
]


@pytest.mark.parametrize(("case", "k", "networks", "exchange", "expected"), ENDPOINT_CASES,
                         ids=[c[0] for c in ENDPOINT_CASES])
def test_endpoint_verdict(case: str, k: Record, networks: tuple[str, ...], exchange: str,
                          expected: tuple[str, str | None, str | None]) -> None:
    result = pa.endpoint_verdict(k, networks, exchange)
    assert (result["verdict"], result["layer"], result["mechanism"]) == expected, result
    assert result["evidence"]


def v(kind: str, layer: str | None = None, mechanism: str | None = None,
      confidence: float = 0.8) -> Record:
    return pa.verdict(kind, layer, mechanism, confidence, [])


COMBINE_CASES = [
    ("any: one of three ok", "any", [v("blocked", "tcp", "timeout"), v("ok"),
                                     v("inconclusive")], ("ok", None, None)),
    ("any: all blocked", "any", [v("blocked", "tcp", "timeout"), v("blocked", "tcp", "timeout"),
                                 v("blocked", "tcp", "reset")], ("blocked", "tcp", "timeout")),
    ("any: blocked and inconclusive", "any", [v("blocked", "tls", "reset"), v("inconclusive")],
     ("blocked", "tls", "reset")),
    ("all: one blocked", "all", [v("ok"), v("blocked", "dns", "nxdomain")],
     ("blocked", "dns", "nxdomain")),
    ("all: every part ok", "all", [v("ok"), v("ok")], ("ok", None, None)),
    ("all: one down", "all", [v("ok"), v("down", "tcp", "refused")], ("down", "tcp", "refused")),
    ("all: one inconclusive", "all", [v("ok"), v("inconclusive")], ("inconclusive", None, None)),
    ("all: throttled only", "all", [v("ok"), v("throttled", "http")], ("throttled", "http", None)),
    ("nothing", "all", [], ("inconclusive", None, None)),
]


@pytest.mark.parametrize(("case", "need", "parts", "expected"), COMBINE_CASES,
                         ids=[c[0] for c in COMBINE_CASES])
def test_combine(case: str, need: str, parts: list[Record],
                 expected: tuple[str, str | None, str | None]) -> None:
    result = pa.combine(need, [(f"e{i}", p) for i, p in enumerate(parts)])
    assert (result["verdict"], result["layer"], result["mechanism"]) == expected


def test_platform_blocked_when_one_group_is() -> None:
    groups = {"datacenters": v("ok"), "web": v("blocked", "tls", "reset", 0.8)}
    result = pa.platform_verdict(groups)
    assert (result["verdict"], result["layer"], result["mechanism"]) == ("blocked", "tls", "reset")
    assert result["evidence"] == ["datacenters:ok", "web:blocked:tls/reset"]


def endpoint(group: str, target: str, tcp_ok: bool = True, http_ok: bool = False,
             failure: str | None = None, consistency: str | None = "consistent") -> Record:
    return {"group": group, "target": target, "tcp_ok": tcp_ok, "http_ok": http_ok,
            "failure": failure, "dns_consistency": consistency}


def test_telegram_keys_follow_ooni() -> None:
    endpoints = [endpoint("datacenters", "149.154.175.50", tcp_ok=False, failure="x"),
                 endpoint("datacenters", "149.154.167.51", tcp_ok=True, http_ok=True),
                 endpoint("web", "https://web.telegram.org/", failure="connection_reset")]
    assert pa.ooni_keys("telegram", endpoints) == {
        "telegram_tcp_blocking": False, "telegram_http_blocking": False,
        "telegram_web_status": "blocked", "telegram_web_failure": "connection_reset"}
    all_down = [endpoint("datacenters", "149.154.175.50", tcp_ok=False, failure="t"),
                endpoint("web", "https://web.telegram.org/")]
    keys = pa.ooni_keys("telegram", all_down)
    assert keys["telegram_tcp_blocking"] is True and keys["telegram_http_blocking"] is True
    assert keys["telegram_web_status"] == "ok" and keys["telegram_web_failure"] is None


def test_whatsapp_keys_follow_ooni() -> None:
    endpoints = [endpoint("endpoints", "e1.whatsapp.net", tcp_ok=False, failure="t"),
                 endpoint("endpoints", "e2.whatsapp.net", consistency="inconsistent"),
                 endpoint("registration", "https://v.whatsapp.net/v2/register"),
                 endpoint("web", "https://web.whatsapp.com/", failure="dns_nxdomain_error")]
    assert pa.ooni_keys("whatsapp", endpoints) == {
        "whatsapp_endpoints_status": "ok",
        "whatsapp_endpoints_blocked": ["e1.whatsapp.net"],
        "whatsapp_endpoints_dns_inconsistent": ["e2.whatsapp.net"],
        "registration_server_status": "ok", "registration_server_failure": None,
        "whatsapp_web_status": "blocked", "whatsapp_web_failure": "dns_nxdomain_error"}


def test_signal_and_messenger_keys_follow_ooni() -> None:
    signal = [endpoint("backend", "https://chat.signal.org/"),
              endpoint("backend", "https://storage.signal.org/", failure="generic_timeout_error")]
    assert pa.ooni_keys("signal", signal) == {"signal_backend_status": "blocked",
                                              "signal_backend_failure": "generic_timeout_error"}
    messenger = [endpoint("endpoints", "b-api.facebook.com", tcp_ok=False),
                 endpoint("endpoints", "stun.fbsbx.com", consistency="inconsistent"),
                 endpoint("endpoints", "lab-edge.example.org")]
    keys = pa.ooni_keys("facebook_messenger", messenger)
    assert keys["facebook_b_api_reachable"] is False
    assert keys["facebook_b_api_dns_consistent"] is True
    assert keys["facebook_stun_dns_consistent"] is False
    assert keys["facebook_lab_edge_reachable"] is True
    assert keys["facebook_tcp_blocking"] is True and keys["facebook_dns_blocking"] is True
    assert pa.ooni_keys("youtube", messenger) == {}


def test_web_failure_picks_the_first_failing_step() -> None:
    ok = {"requests": [{"response": {"code": 200}, "failure": None}]}
    assert pa.web_failure(ok) is None
    assert pa.web_failure({"dns_experiment_failure": "dns_nxdomain_error"}) == \
        "dns_nxdomain_error"
    tcp = {"tcp_connect": [connect(A, 443, "generic_timeout_error")]}
    assert pa.web_failure(tcp) == "generic_timeout_error"
    tls = {"tcp_connect": [connect(A, 443)],
           "tls_handshakes": [{"failure": "connection_reset"}]}
    assert pa.web_failure(tls) == "connection_reset"
