"""Every verdict of the throttling, platform, censor trace and TCP reachability analyses over
their tests' inputs, byte for byte: ``evidence`` strings, typed ``evidence_fields``, key order.

The snapshot (``tests/testdata/evidence_snapshot_kinds.json``) pins what a refactor of these
rules or of their evidence must leave unchanged, as ``test_evidence_snapshot`` does for web
connectivity. A change of the rules that is meant changes it: rewrite it with
``python -m tests.probe.nettests.test_evidence_snapshot_kinds`` and bump the kind's
``analysis_version`` (README, "analysis_version").
"""

from __future__ import annotations

import json
import sys
from typing import Any

from collector.reanalysis import rerun
from probe.core.evidence import with_fields
from probe.nettests.censor_trace import analysis as censor
from probe.nettests.platforms import analysis as platforms
from probe.nettests.tcp_reachability import analysis as tcp
from probe.nettests.throttling import analysis as throttling
from tests.helpers.paths import TESTDATA
from tests.probe.nettests.censor_trace.test_censor_analysis import (
    CONTROL,
    INJECTION_CASES,
    LOCATE_CASES,
)
from tests.probe.nettests.platforms.test_platform_analysis import (
    COMBINE_CASES,
    ENDPOINT_CASES,
    v,
)
from tests.probe.nettests.throttling.test_analysis import CASES

SNAPSHOT = TESTDATA / "evidence_snapshot_kinds.json"
_OK = {"status": {"success": True, "failure": None}}


def _failed(failure: str) -> dict[str, Any]:
    return {"status": {"success": False, "failure": failure}}


TCP_KEYS = {
    "connected": {"tcp_connect": [_failed("generic_timeout_error"), _OK]},
    "refused": {"tcp_connect": [_failed("connection_refused"), _failed("connection_refused"),
                                _failed("generic_timeout_error")]},
    "nxdomain": {"addresses": [], "dns_failure": "dns_nxdomain_error", "tcp_connect": []},
    "no_address": {"tcp_connect": []},
}
PLATFORM_GROUPS = {
    "one_group_blocked": {"datacenters": v("ok"), "web": v("blocked", "tls", "reset", 0.8)},
    "all_down": {"a": v("down", "tcp", "refused"), "b": v("down", "tcp", "refused")},
    "nothing": {},
}


def _endpoint(target: str, injected: bool | None) -> dict[str, Any]:
    return {"target": target, "x_injection": {"injected": injected}}


def _own(analysis: dict[str, Any]) -> dict[str, Any]:
    """A verdict as its kind writes it: with the fields it read from its own facts."""
    assert list(analysis)[-1] == "evidence_fields", analysis
    return with_fields(analysis)  # as the envelope passes it: unchanged


def snapshot() -> dict[str, Any]:
    """The analysis of every case, by case name, with its fields as the probe writes them."""
    cases: dict[str, Any] = {}
    for name in sorted(CASES):
        cases[f"throttling/{name}"] = _own(throttling.analyze(CASES[name][0].keys())["analysis"])
    # An endpoint's or a group's verdict carries no fields on the wire: the snapshot pins its
    # text, with the fields that text would give.
    for case, keys, networks, exchange, _ in ENDPOINT_CASES:
        cases[f"platforms/endpoint/{case}"] = with_fields(
            platforms.endpoint_verdict(keys, networks, exchange))
    for case, need, parts, _ in COMBINE_CASES:
        cases[f"platforms/combine/{case}"] = with_fields(
            platforms.combine(need, [(f"e{i}", p) for i, p in enumerate(parts)]))
    for case, groups in PLATFORM_GROUPS.items():
        cases[f"platforms/platform/{case}"] = _own(platforms.platform_verdict(groups))
        measurement = {"test_name": "telegram", "test_keys": {
            "x_groups": groups, "x_endpoints": [_endpoint("149.154.167.51:443", True),
                                                _endpoint("149.154.175.50:443", None)]}}
        again = rerun(measurement)  # None without groups: nothing to combine again
        cases[f"platforms/rerun/{case}"] = again if again is None else _own(again)
    for case, control, trigger, _, _ in LOCATE_CASES:
        for layer in ("http", "tls"):
            found = censor.locate(control, trigger, layer)
            cases[f"censor_trace/locate/{case}/{layer}"] = {
                "censor": found["censor"], "analysis": _own(found["analysis"])}
    for case, suspect, genuine, _ in INJECTION_CASES:
        cases[f"censor_trace/injection/{case}"] = censor.injection(suspect, genuine)
    cases["censor_trace/control"] = len(CONTROL)
    for case, keys in TCP_KEYS.items():
        cases[f"tcp_reachability/{case}"] = _own(tcp.analyze(keys))
    return cases


def _text(cases: dict[str, Any]) -> str:
    return json.dumps(cases, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


def test_every_verdict_and_its_evidence_are_as_recorded() -> None:
    cases = snapshot()
    assert len(cases) > len(CASES) + len(ENDPOINT_CASES) + len(LOCATE_CASES)
    assert any(c["evidence_fields"]["goodput_ratio"] for k, c in cases.items()
               if k.startswith("throttling/"))  # the snapshot pins fields, not only nulls
    recorded = SNAPSHOT.read_text(encoding="utf-8")
    assert _text(cases) == recorded  # byte for byte: strings, fields, key order


if __name__ == "__main__":
    SNAPSHOT.write_text(_text(snapshot()), encoding="utf-8")
    print(f"wrote {SNAPSHOT.name}", file=sys.stderr)
