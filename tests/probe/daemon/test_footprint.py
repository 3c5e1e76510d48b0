"""Footprint: scapy (about 50 MB of resident memory) is loaded only when a raw-packet check
runs, never by importing the daemon, by a round of sites and platforms, or by a raw-packet
check that finds it has no CAP_NET_RAW.

Each round runs in its own process (``tests/helpers/footprint_round.py``) so that what other
tests imported does not count. Memory itself is measured in ``bench/probe_footprint.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import REPO
from tests.helpers.processes import without_net_raw


async def one_round(directory: Path, *flags: str, without_raw: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.helpers.footprint_round", str(directory), *flags]
    if without_raw:
        command = without_net_raw(command)
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-2000:]
    report: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    # The round happened: the ladder, four sites and a platform check.
    assert report["measured"] == ["connectivity", "platform", "web_connectivity"]
    assert report["count"] == 6
    assert report["after_import"] is False
    return report


async def test_a_round_of_sites_does_not_import_scapy(fast_disk: Path) -> None:
    report = await one_round(fast_disk)
    assert report["platform_verdict"] == "ok" and report["fingerprints"] == []
    assert report["could_trace"] is (os.geteuid() == 0)
    assert report["after_round"] is False
    # And the check could have failed: a real raw-packet request loads scapy at once (when
    # raw sockets are allowed; without them nothing needs scapy, and it stays out).
    assert report["after_raw_check"] is (report["raw_capability"] is None)


async def test_a_fingerprint_without_cap_net_raw_does_not_import_scapy(
        fast_disk: Path) -> None:
    """A reset asks for a raw-packet fingerprint; without the capability it is recorded as
    ``permission_denied`` and scapy stays out (it used to be imported before the socket was
    tried)."""
    report = await one_round(fast_disk, "--reset", without_raw=True)
    assert report["platform_verdict"] == "down"
    assert report["fingerprints"] == ["permission_denied"]
    assert report["could_trace"] is False
    assert report["after_round"] is False


async def test_a_fingerprint_that_runs_loads_scapy_then(fast_disk: Path) -> None:
    if os.geteuid() != 0:
        reason = "needs CAP_NET_RAW (run as root) for the fingerprint to run"
        if os.environ.get("CI") == "true":
            pytest.fail(f"must run in CI: {reason}")
        pytest.skip(reason)
    report = await one_round(fast_disk, "--reset")
    assert report["platform_verdict"] == "down"
    assert report["fingerprints"] == [None]  # it ran and compared the reset
    assert report["after_round"] is True
