"""A shutdown, seen by the probe daemon: it says the network is down and keeps its results.

The censor drops everything it would forward and its resolver loses the uplink. The probe
daemon (``python -m probe run --once``) must report no connectivity with the facts it saw
(gateway reachable, foreign hosts unreachable), measure no site (so it calls none blocked),
and keep its measurements for a later upload. The same run with the network restored is the
counter-check: online, and nothing left waiting.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.lab import plan
from tests.lab.lab import CONTROL_URL, Lab
from tests.lab.scenarios import BY_NAME

pytestmark = pytest.mark.lab


def _probe_config(lab: Lab, token: str) -> Path:
    target = BY_NAME["success_https"].url
    path = lab.workdir / "probe-daemon.yaml"
    path.write_text(
        "identity: {probe_id: lab-probe, country: KG}\n"
        f"collector: {{url: '{CONTROL_URL}', token: '{token}', ca_file: '{lab.ca_file}'}}\n"
        f"ca_file: '{lab.ca_file}'\n"
        "timeouts: {dns: 3s, connect: 3s, tls: 3s, http: 4s, control: 10s}\n"
        f"targets: [{{url: '{target}'}}]\n"
        "ladder:\n"
        f"  foreign: ['{plan.PUBLIC_RESOLVER}:443', '{plan.AUTH_DNS}:443']\n"
        f"  resolver_name: '{plan.CONTROL_NAME}'\n"
        "  timeout: 1.5\n"
        f"spool_path: '{lab.workdir / 'spool.sqlite'}'\n"  # kept between the two runs
        "consent: {accepted: true, notice_version: 1}\n")  # `probe run` requires it
    return path


def _run_daemon(lab: Lab, config: Path) -> str:
    result = lab.topology.in_ns(lab.topology.client, sys.executable, "-m", "probe", "run",
                                "--config", str(config), "--once", timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_a_shutdown_is_reported_as_no_connectivity_and_results_are_kept(lab: Lab) -> None:
    issued = lab.topology.in_ns(lab.topology.world, sys.executable, "-m", "collector", "token",
                                "issue", "--probe-id", "lab-probe", "--config",
                                lab.collector_config)
    config = _probe_config(lab, issued.stdout.strip())

    shutdown = BY_NAME["shutdown"]
    lab.apply(shutdown)
    try:
        offline = _run_daemon(lab, config)
    finally:
        lab.revert(shutdown)
    assert "no connectivity: gateway reachable" in offline
    assert "foreign hosts unreachable" in offline
    assert "1 measurements waiting for upload" in offline  # the ladder's own measurement
    assert "check of" not in offline  # no site was measured, so none was called blocked

    online = _run_daemon(lab, config)
    assert "round done: online" in online
    assert "0 measurements waiting for upload" in online
