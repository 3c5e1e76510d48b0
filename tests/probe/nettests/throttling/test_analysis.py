"""The throttling verdict on synthetic flows: one row per situation, each with its exact result.

The flows have the shape ``probe.nettests.throttling.measure`` records (kernel byte-time curve from
the TCP connect, the TLS handshake, the request time), generated here at chosen rates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from probe.nettests.throttling.analysis import analyze, flow_metrics

Record = dict[str, Any]
CERT = "ab" * 32
WINDOW = 512 * 1024


def flow(role: str, index: int, rate_bps: float, *, address: str = "45.91.20.10:443",
         handshake: float = 0.01, cap_seconds: float = 3.0, cert: str = CERT,
         failure: str | None = None, seed: int = 0, jitter: float = 0.05,
         size: int = WINDOW) -> Record:
    """A flow downloading ``size`` bytes (at most 512 KiB) at ``rate_bps``, cut after
    ``cap_seconds`` (then x_slow)."""
    rng = random.Random(f"{role}-{index}-{seed}")
    start = 10.0 * index + (5.0 if role.startswith("b") or role == "ab_control" else 0.0)
    record: Record = {
        "role": role, "round": index, "address": address, "server_name": role,
        "t0": start,
        "tcp_connect": {"status": {"success": failure is None, "failure": failure},
                        "t0": start, "t": start + 0.001},
        "tls_handshake": None, "request": None, "failure": failure, "operation": None,
        "x_slow": False, "request_t0": None, "curve_source": "tcp_info", "samples": [],
    }
    if failure is not None:
        record["operation"] = "connect"
        record["t"] = start + 0.001
        return record
    hello_bytes = 4200
    request_t0 = start + 0.001 + handshake
    record["tls_handshake"] = {"failure": None, "t0": start + 0.001, "t": request_t0,
                               "x_certificates": [{"sha256": cert}]}
    record["request_t0"] = request_t0
    samples: list[list[float]] = [[start, 0], [request_t0, hello_bytes]]
    t, n = request_t0, 0.0
    duration = min(cap_seconds, min(size, WINDOW) * 8 / rate_bps)
    step = min(0.25, duration)
    while t < request_t0 + duration - 1e-9:
        dt = min(step, request_t0 + duration - t)
        t += dt
        n += rate_bps / 8 * dt * (1 + rng.uniform(-jitter, jitter))
        samples.append([round(t, 6), hello_bytes + int(n)])
    record["samples"] = samples
    record["t"] = t
    slow = duration >= cap_seconds
    record["request"] = {"x_ttfb": request_t0 + min(0.02, duration), "failure": None}
    if slow:
        record["failure"] = "generic_timeout_error"
        record["operation"] = "http_round_trip"
        record["x_slow"] = True
    return record


@dataclass
class Scenario:
    target_bps: float
    baseline_bps: float
    ab: tuple[float, float] | None = None  # (original, control) rates
    same_address: bool = False
    target_handshake: float = 0.01
    ab_handshakes: tuple[float, float] = (0.01, 0.01)
    target_failure: str | None = None
    ab_cert: str = CERT
    baseline_bytes: int = WINDOW
    rounds: int = 3
    extra: Record = field(default_factory=dict)

    def keys(self) -> Record:
        flows = []
        for i in range(self.rounds):
            flows.append(flow("target", i, self.target_bps, handshake=self.target_handshake,
                              failure=self.target_failure))
            flows.append(flow("baseline", i, self.baseline_bps,
                              address="45.91.20.10:443" if self.same_address
                              else "45.91.20.11:443", size=self.baseline_bytes))
        keys: Record = {"flows": flows, "sni_ab": None, **self.extra}
        if self.ab is not None:
            original, control = self.ab
            ab_flows = []
            for i in range(3):
                ab_flows.append(flow("ab_original", i, original, address="45.91.20.12:8443",
                                     handshake=self.ab_handshakes[0], cert=self.ab_cert))
                ab_flows.append(flow("ab_control", i, control, address="45.91.20.12:8443",
                                     handshake=self.ab_handshakes[1], cert=self.ab_cert))
            keys["sni_ab"] = {"flows": ab_flows, "certificate_sha256": CERT}
        return keys


KBIT, MBIT = 1e3, 1e6

CASES = {
    # 128 kbit/s on the target's address, a fast co-hosted baseline, and the name alone does
    # nothing on the collector's path.
    "ip_throttle": (Scenario(128 * KBIT, 20 * MBIT, ab=(20 * MBIT, 20 * MBIT)),
                    ("throttled", "tcp", "ip_throttle"), ["target_slower_than_baseline"]),
    # The A/B test shows the target's SNI held down on the collector's own path.
    "sni_throttle_ab": (Scenario(128 * KBIT, 20 * MBIT, ab=(128 * KBIT, 20 * MBIT)),
                        ("throttled", "tls", "sni_throttle"), ["sni_ab:differentiation"]),
    # The A/B test alone suffices: same server, same bytes, only the name differs.
    "sni_throttle_ab_only": (Scenario(20 * MBIT, 20 * MBIT, ab=(128 * KBIT, 20 * MBIT)),
                             ("throttled", "tls", "sni_throttle"), ["sni_ab:differentiation"]),
    # KZ 2022-23: handshakes over 2 s for the target's SNI only.
    "sni_handshake_throttle": (
        Scenario(10 * MBIT, 10 * MBIT, ab=(10 * MBIT, 10 * MBIT), target_handshake=2.5,
                 ab_handshakes=(2.5, 0.02)),
        ("throttled", "tls", "sni_throttle"), ["sni_ab_handshake_slower"]),
    # Co-hosted on one address, no A/B: only the name differs, so the SNI is the trigger.
    "same_address_no_ab": (Scenario(128 * KBIT, 20 * MBIT, same_address=True),
                           ("throttled", "tls", "sni_throttle"), ["same_address_different_sni"]),
    # One address, and the A/B test clears the SNI: slow, mechanism not named.
    "same_address_ab_clear": (
        Scenario(128 * KBIT, 20 * MBIT, ab=(20 * MBIT, 20 * MBIT), same_address=True),
        ("throttled", None, None), ["same_address_sni_not_differentiated"]),
    # Different addresses and no A/B test: slow, mechanism unknown.
    "no_ab": (Scenario(128 * KBIT, 20 * MBIT), ("throttled", None, None),
              ["mechanism_unknown"]),
    # The handshake alone is slow against the baseline (and the A/B clears the SNI).
    "handshake_ip_throttle": (
        Scenario(10 * MBIT, 10 * MBIT, ab=(10 * MBIT, 10 * MBIT), target_handshake=2.5),
        ("throttled", "tcp", "ip_throttle"), ["target_handshake_slower_than_baseline"]),
    # A favicon as baseline: a few hundred bytes say nothing about goodput, so a slow target
    # is judged on handshakes and the A/B test only.
    "tiny_baseline": (Scenario(128 * KBIT, 20 * MBIT, baseline_bytes=600),
                      ("inconclusive", None, None), ["goodput_not_comparable", "target_slow"]),
    "tiny_baseline_fast_target": (Scenario(20 * MBIT, 20 * MBIT, baseline_bytes=600),
                                  ("ok", None, None), ["goodput_not_comparable"]),
    # A favicon's "goodput" is one round trip: low, and no sign of a slow path.
    "tiny_baseline_round_trip": (Scenario(20 * MBIT, 100 * KBIT, baseline_bytes=600),
                                 ("ok", None, None), ["goodput_not_comparable"]),
    "tiny_baseline_ab": (Scenario(128 * KBIT, 20 * MBIT, ab=(128 * KBIT, 20 * MBIT),
                                  baseline_bytes=600),
                         ("throttled", "tls", "sni_throttle"), ["sni_ab:differentiation"]),
    # The whole path is slow: never called targeted.
    "generalized": (Scenario(250 * KBIT, 250 * KBIT, ab=(250 * KBIT, 250 * KBIT)),
                    ("inconclusive", None, None), ["generalized_slowness", "sni_ab:none"]),
    "generalized_target_slower": (Scenario(40 * KBIT, 250 * KBIT),
                                  ("inconclusive", None, None), ["generalized_slowness"]),
    # Nothing wrong.
    "clean": (Scenario(20 * MBIT, 18 * MBIT, ab=(20 * MBIT, 20 * MBIT)), ("ok", None, None),
              ["sni_ab:none"]),
    # A 4x difference between two transfers of a few milliseconds: timing noise, one sample
    # per flow, never significant.
    "fast_path_noise": (Scenario(300 * MBIT, 1200 * MBIT), ("ok", None, None), []),
    # The target never answers while the baseline does: blocking is web connectivity's call.
    "target_failed": (Scenario(0.0, 20 * MBIT, target_failure="connection_reset"),
                      ("inconclusive", None, None), ["target_failed:connection_reset"]),
    # Someone else answered for the collector: the A/B flows prove nothing.
    "ab_certificate_mismatch": (
        Scenario(128 * KBIT, 20 * MBIT, ab=(128 * KBIT, 20 * MBIT), ab_cert="cd" * 32),
        ("throttled", None, None), ["sni_ab_certificate_mismatch", "mechanism_unknown"]),
    # The budget cut the test short; what was measured still counts, and the cut is said.
    "budget_cut": (
        Scenario(128 * KBIT, 20 * MBIT, ab=(20 * MBIT, 20 * MBIT),
                 extra={"x_budget": {"skipped_flows": 4}}),
        ("throttled", "tcp", "ip_throttle"), ["budget_skipped_flows:4"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict(name: str) -> None:
    scenario, (verdict, layer, mechanism), evidence = CASES[name]
    result = analyze(scenario.keys())
    analysis = result["analysis"]
    assert (analysis["verdict"], analysis["layer"], analysis["mechanism"]) == (
        verdict, layer, mechanism), analysis
    for line in evidence:
        assert line in analysis["evidence"], analysis["evidence"]


def test_rates_are_in_the_evidence_and_summary() -> None:
    scenario, _, _ = CASES["ip_throttle"]
    result = analyze(scenario.keys())
    summary = result["summary"]
    assert summary["target_goodput_bps"] == pytest.approx(128e3, rel=0.05)
    assert summary["baseline_goodput_bps"] == pytest.approx(20e6, rel=0.05)
    assert summary["goodput_ratio"] == pytest.approx(156, rel=0.1)
    assert summary["target_plateau_bps"] == pytest.approx(128e3, rel=0.05)
    assert summary["rates_ks_pvalue"] < 0.01
    assert summary["same_address"] is False
    evidence = result["analysis"]["evidence"]
    assert any(line.startswith("target_goodput_bps:") for line in evidence)
    assert any(line.startswith("target_plateau_bps:") for line in evidence)
    assert result["sni_ab_result"]["verdict"] == "none"


def test_extreme_throttling_raises_confidence() -> None:
    mild = analyze(Scenario(5 * MBIT, 20 * MBIT, ab=(20 * MBIT, 20 * MBIT)).keys())
    extreme = analyze(Scenario(128 * KBIT, 20 * MBIT, ab=(20 * MBIT, 20 * MBIT)).keys())
    assert mild["analysis"]["mechanism"] == extreme["analysis"]["mechanism"] == "ip_throttle"
    assert mild["analysis"]["confidence"] < extreme["analysis"]["confidence"]


def test_flow_metrics_of_a_slow_flow() -> None:
    metrics = flow_metrics(flow("target", 0, 128 * KBIT, handshake=0.4))
    assert metrics["slow"] is True
    assert metrics["tls_handshake_s"] == pytest.approx(0.4, abs=0.002)
    assert metrics["bytes"] == pytest.approx(128e3 / 8 * 3.0, rel=0.05)
    assert metrics["goodput_bps"] == pytest.approx(128e3, rel=0.05)
    assert metrics["plateau"]["found"] is True
    assert metrics["comparable"] is True


def test_flow_metrics_of_a_failed_flow() -> None:
    metrics = flow_metrics(flow("target", 0, 0.0, failure="connection_refused"))
    assert metrics["goodput_bps"] is None and metrics["bytes"] == 0
    assert metrics["connect_s"] is None and metrics["rates_bps"] == []
