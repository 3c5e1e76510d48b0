"""The verdict of a TCP reachability measurement: a pure function of its keys.

Without a control vantage a failed connect cannot tell a blocked port from a service that is
down, so the verdict never claims either: ``ok`` when any address accepted the connection,
else ``inconclusive`` with the layer and the failure as mechanism (``connection_refused``,
``generic_timeout_error``, ...), which the collector's detectors compare across probes.
"""

from __future__ import annotations

from typing import Any

from probe.core.evidence import Fact, written

# The version of these rules, carried by every verdict as ``analysis_version`` (declared to the
# registry by ``nettest.py``): bump it whenever a rule changes a verdict (see the README).
ANALYSIS_VERSION = 1


def analyze(keys: dict[str, Any]) -> dict[str, Any]:
    connects = [c for c in keys.get("tcp_connect") or [] if isinstance(c, dict)]
    if any((c.get("status") or {}).get("success") for c in connects):
        return _verdict("ok", None, None, 1.0, [Fact("tcp", "connected")])
    if keys.get("dns_failure"):
        failure = str(keys["dns_failure"])
        return _verdict("inconclusive", "dns", failure, 0.0, [Fact("dns", failure)])
    failed = [str((c.get("status") or {}).get("failure")) for c in connects]
    if not failed:
        return _verdict("inconclusive", "dns", None, 0.0, [Fact("dns", "no_address")])
    # The first address's failure names the mechanism; every one is evidence.
    return _verdict("inconclusive", "tcp", failed[0], 0.0,
                    [Fact("tcp", failure) for failure in dict.fromkeys(failed)])


def _verdict(verdict: str, layer: str | None, mechanism: str | None, confidence: float,
             evidence: list[Fact]) -> dict[str, Any]:
    return written({"verdict": verdict, "layer": layer, "mechanism": mechanism,
                    "confidence": confidence, "evidence": evidence,
                    "analysis_version": ANALYSIS_VERSION})
