"""Measurements as the probe writes them -> observations, including the throttling test's
real output and the connectivity ladder's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from collector.detect.extract import observation
from collector.detect.model import LadderReading, Run
from probe.core.evidence import written
from probe.core.measurement import envelope
from probe.nettests.connectivity import ladder as connectivity
from probe.nettests.throttling import analysis as throttling_analysis

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def measure(test_name: str, input_: str | None, keys: dict[str, Any]) -> dict[str, Any]:
    return envelope(test_name=test_name, input_=input_, test_keys=keys, started=STARTED,
                    runtime=1.0, cc="KZ", asn="AS9198", probe_id="p1")


def test_web_connectivity_blocked_by_interception_carries_the_issuer() -> None:
    keys = {"tls_handshakes": [{"server_name": "vlast.kz", "t0": 0.1, "t": 0.4,
                                "failure": "ssl_unknown_authority"}],
            "analysis": {"verdict": "blocked", "layer": "tls", "mechanism": "mitm",
                         "confidence": 0.9,
                         "evidence": ["probe_tls:ssl_unknown_authority",
                                      "issuer:Qaznet Trust Network",
                                      "control_issuer:Let's Encrypt"]}}
    run = observation(measure("web_connectivity", "https://vlast.kz/", keys), "p1")
    assert run == Run(probe_id="p1", cc="KZ", asn="AS9198", target="https://vlast.kz/",
                      t=STARTED.timestamp(), outcome="blocked", layer="tls", mechanism="mitm",
                      fingerprint="issuer:Qaznet Trust Network", handshake=None,
                      slowdown=None, failed=True)


def test_web_connectivity_ok_gives_the_target_handshake_time() -> None:
    keys = {"tls_handshakes": [
        {"server_name": "cdn.example", "t0": 0.0, "t": 0.05, "failure": None},
        {"server_name": "vlast.kz", "t0": 0.1, "t": 0.35, "failure": None}],
        "analysis": {"verdict": "ok", "layer": None, "mechanism": None, "confidence": 0.95,
                     "evidence": ["https_status:200"]}}
    run = observation(measure("web_connectivity", "https://vlast.kz/", keys), "p1")
    assert isinstance(run, Run) and run.outcome == "ok" and not run.failed
    assert run.handshake == pytest.approx(0.25)


def test_the_throttling_tests_own_ratios_become_the_slowdown() -> None:
    summary = {"rounds": 3, "goodput_ratio": 14.2, "rates_ks_pvalue": 1e-5,
               "goodput_comparable": True, "baseline_comparable": True,
               "target_comparable": True, "handshake_ratio": 4.5,
               "target_tls_handshake_s": 2.3, "baseline_tls_handshake_s": 0.2,
               "baseline_goodput_bps": 9e6, "target_goodput_bps": 6.3e5,
               "target_plateau_flows": 0, "target_plateau_bps": None, "same_address": False,
               "target_failures": [], "baseline_failures": []}
    analysis = written(throttling_analysis.decide_throttling(summary, None))
    assert analysis["verdict"] == "throttled"
    run = observation(measure("throttling", "https://www.azattyq.org/",
                              {"analysis": analysis}), "p1")
    assert isinstance(run, Run) and run.outcome == "throttled"
    assert run.slowdown == pytest.approx(14.2)  # the larger of goodput and handshake ratios


def test_an_explicit_slowdown_wins_and_incomparable_goodput_is_ignored() -> None:
    def run_of(evidence: list[str]) -> Run:
        keys = {"analysis": {"verdict": "ok", "layer": None, "mechanism": None,
                             "confidence": 0.8, "evidence": evidence}}
        found = observation(measure("throttling", "https://a.example/", keys), "p1")
        assert isinstance(found, Run)
        return found

    assert run_of(["slowdown:7", "goodput_ratio:20"]).slowdown == 7.0
    assert run_of(["goodput_ratio:20", "handshake_ratio:1.1",
                   "goodput_not_comparable"]).slowdown == pytest.approx(1.1)
    assert run_of(["goodput_ratio:nan"]).slowdown is None


@pytest.mark.parametrize(("rungs", "cause"), [
    ({"gateway": {"reachable": True}, "resolver": {"reachable": True},
      "domestic": {"reachable": True}, "foreign": {"reachable": False}}, "international_cut"),
    ({"gateway": {"reachable": False}, "resolver": {"reachable": False},
      "foreign": {"reachable": False}}, "local_outage"),
])
def test_the_connectivity_ladder_becomes_a_reading_with_its_cause(
        rungs: dict[str, Any], cause: str) -> None:
    observed = {"rungs": rungs, "gateway_known": True}
    online, summary = connectivity.summarise(observed)
    keys = {**observed, "analysis": {"online": online, "summary": summary}}
    reading = observation(measure("connectivity", None, keys), "p1")
    assert reading == LadderReading("p1", "KZ", "AS9198", STARTED.timestamp(), False, cause)


def test_malformed_measurements_are_skipped() -> None:
    assert observation({"test_name": "web_connectivity"}, "p1") is None
    good = measure("web_connectivity", "https://a.example/", {"analysis": {}})
    assert observation({**good, "test_keys": "nope"}, "p1") is None
    platform = observation(measure("telegram", None, {"analysis": {"verdict": "blocked"}}),
                           "p1")
    assert isinstance(platform, Run) and platform.target == "telegram"


def test_a_failure_the_control_could_not_check_is_no_failure() -> None:
    """The collector is the control: when it is down, the probe's failures prove nothing."""
    keys = {"control_failure": "connection_refused", "http_experiment_failure":
            "generic_timeout_error",
            "analysis": {"verdict": "inconclusive", "layer": "tcp", "mechanism": "timeout",
                         "confidence": 0.0,
                         "evidence": ["probe_tcp:generic_timeout_error",
                                      "control_failure:connection_refused"]}}
    run = observation(measure("web_connectivity", "https://a.example/", keys), "p1")
    assert isinstance(run, Run) and run.control_failed and not run.failed
    keys["control_failure"] = None
    keys["analysis"]["evidence"] = ["probe_tcp:generic_timeout_error", "control_tcp:ok"]
    run = observation(measure("web_connectivity", "https://a.example/", keys), "p1")
    assert isinstance(run, Run) and run.failed and not run.control_failed


def test_a_ladder_reading_that_only_lost_the_collector_is_no_reading() -> None:
    monitor_only = {"gateway": {"reachable": True}, "resolver": {"reachable": True},
                    "collector": {"reachable": False, "reached": 0, "tried": 1}}
    observed = {"rungs": monitor_only, "gateway_known": True}
    online, summary = connectivity.summarise(observed)
    assert not online  # the probe itself cannot tell
    keys = {**observed, "analysis": {"online": online, "summary": summary}}
    assert observation(measure("connectivity", None, keys), "p1") is None
    # With a foreign rung that failed too, the reading is evidence again.
    cut = {**monitor_only, "foreign": {"reachable": False, "reached": 0, "tried": 3}}
    keys = {"rungs": cut, "gateway_known": True,
            "analysis": {"online": False, "summary": connectivity.summarise(
                {"rungs": cut, "gateway_known": True})[1]}}
    reading = observation(measure("connectivity", None, keys), "p1")
    assert isinstance(reading, LadderReading) and not reading.online
    # And a gateway that did not answer is the volunteer's own outage, whatever the collector.
    local = {**monitor_only, "gateway": {"reachable": False}}
    keys = {"rungs": local, "gateway_known": True,
            "analysis": {"online": False, "summary": "no connectivity"}}
    reading = observation(measure("connectivity", None, keys), "p1")
    assert isinstance(reading, LadderReading) and reading.cause == "local_outage"
