"""Throttling scenarios on a real network: tc htb + u32, an iptables SNI policer, a slow link.

Each scenario builds its own sealed lab (``lab.py``: client, censor and world namespaces with
real HTTPS sites and a real collector) and runs ``python -m probe throttle`` in the client
namespace, with the SNI A/B test against the collector. The four probes run at the same time,
each in its own lab, to keep the suite short; each test then checks one scenario's exact
verdict and the rates measured. Needs root; skipped with a reason elsewhere, failed under CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.probe.throttle.lab import TARGET_HOST, TARGET_IP, ThrottleLab, lab_capable

pytestmark = pytest.mark.lab

# Three rounds of target/baseline and of A/B, each transfer capped at 2.5 s or 512 KiB:
# three rounds are the fewest with which a fast side's few samples can reach KS p < 0.01.
PROBE_ARGS = ("--repetitions", "3", "--ab-repetitions", "3", "--transfer-timeout", "2.5s")

SCENARIOS: dict[str, Callable[[ThrottleLab], None]] = {
    "clean": lambda lab: None,
    "ip_128kbit": lambda lab: lab.shape_address(TARGET_IP, "128kbit"),
    "sni_policer_16kBps": lambda lab: lab.police_sni(TARGET_HOST, "16kb/s"),
    "generalized_600kbit": lambda lab: lab.shape_link("600kbit"),
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ok, reason = lab_capable()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    labs: dict[str, ThrottleLab] = {}
    try:
        for name, censor in SCENARIOS.items():
            lab = labs[name] = ThrottleLab(tmp_path_factory.mktemp(name))
            lab.start()
            censor(lab)
        running = {name: lab.start_probe(*PROBE_ARGS) for name, lab in labs.items()}
        results: dict[str, Any] = {}
        for name, process in running.items():
            try:
                out, err = process.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            assert process.returncode == 0, f"{name}: {err[-3000:]}"
            results[name] = {"measurement": json.loads(out),
                             "censor": labs[name].censor_counters()}
        yield results
    finally:
        for lab in labs.values():
            lab.close()


def keys_of(measured: dict[str, Any], name: str) -> dict[str, Any]:
    measurement = measured[name]["measurement"]
    assert measurement["test_name"] == "throttling"
    keys: dict[str, Any] = measurement["test_keys"]
    return keys


def verdict(keys: dict[str, Any]) -> tuple[str, str | None, str | None]:
    analysis = keys["analysis"]
    return analysis["verdict"], analysis["layer"], analysis["mechanism"]


def test_clean_network_is_ok(measured: dict[str, Any]) -> None:
    keys = keys_of(measured, "clean")
    assert verdict(keys) == ("ok", None, None), keys["analysis"]
    summary = keys["summary"]
    assert summary["rounds"] == 3
    assert summary["goodput_ratio"] < 3
    assert keys["sni_ab_result"]["verdict"] != "differentiation"
    assert keys["sni_ab_result"]["certificate_ok"] is True


def test_target_address_shaped_to_128kbit(measured: dict[str, Any]) -> None:
    keys = keys_of(measured, "ip_128kbit")
    assert verdict(keys) == ("throttled", "tcp", "ip_throttle"), keys["analysis"]
    summary = keys["summary"]
    # htb holds the target at 128 kbit/s; the baseline has the 20 Mbit/s line.
    assert 80e3 < summary["target_goodput_bps"] < 160e3, summary
    assert summary["baseline_goodput_bps"] > 5e6, summary
    assert summary["goodput_ratio"] >= 10  # OONI's "extreme"
    assert summary["target_slow_flows"] == 3  # timed out while bytes arrived: slow, not failed
    assert summary["target_plateau_flows"] >= 1, summary  # a shaper's flat rate
    assert 90e3 < summary["target_plateau_bps"] < 140e3, summary
    # The collector's path is not shaped, so the SNI alone makes no difference.
    assert keys["sni_ab_result"]["verdict"] == "none", keys["sni_ab_result"]
    evidence = keys["analysis"]["evidence"]
    assert any(line.startswith("target_goodput_bps:") for line in evidence)
    assert "sni_ab:none" in evidence


def test_sni_policer_at_16kBps(measured: dict[str, Any]) -> None:
    keys = keys_of(measured, "sni_policer_16kBps")
    assert verdict(keys) == ("throttled", "tls", "sni_throttle"), keys["analysis"]
    ab = keys["sni_ab_result"]
    # Wehe's rule on the collector's own path: only the SNI differs.
    assert ab["verdict"] == "differentiation" and ab["slower"] == "original", ab
    assert ab["area"] > 0.5 and ab["ks_pvalue"] < 0.01
    # The policer drops above 16 kB/s (128 kbit/s); a 16 kB burst passes first, so the
    # median of the per-interval rates says the rate, not the mean.
    assert 50e3 < ab["original_median_bps"] < 200e3, ab
    assert ab["control_median_bps"] > 5e6, ab
    assert keys["summary"]["target_goodput_bps"] < 300e3
    assert "0x5" in measured["sni_policer_16kBps"]["censor"]  # the censor really marked it
    assert "sni_ab:differentiation" in keys["analysis"]["evidence"]


def test_generalized_slowdown_is_not_targeted(measured: dict[str, Any]) -> None:
    keys = keys_of(measured, "generalized_600kbit")
    assert verdict(keys) == ("inconclusive", None, None), keys["analysis"]
    assert "generalized_slowness" in keys["analysis"]["evidence"]
    summary = keys["summary"]
    assert summary["target_goodput_bps"] < 1e6 and summary["baseline_goodput_bps"] < 1e6
    assert 0.5 < summary["goodput_ratio"] < 2
    ab = keys["sni_ab_result"]
    assert ab["verdict"] != "differentiation" and abs(ab["area"]) < 0.5, ab
