"""The shipped systemd unit: systemd itself verifies it and rates its exposure.

Needs ``systemd-analyze`` (Debian package ``systemd``, installed by ``.ci/run``). Skipped
with a reason where it is missing, except in CI, where a missing tool is a failure.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import CONFIGS

UNIT = CONFIGS / "systemd" / "kuzot-probe.service"


def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing in CI (.ci/run installs systemd)")
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    return tool


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with its interpreter pointed at this Python (verify checks it exists)."""
    text = UNIT.read_text().replace("/opt/kuzot/.venv/bin/python", sys.executable)
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_the_unit_runs_the_daemon_unprivileged_and_stops_it_gently() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["User"] == "kuzot" and service["NoNewPrivileges"] == "yes"
    assert service["ExecStart"].endswith("-m probe run --config /etc/kuzot/probe.yaml")
    assert service["CapabilityBoundingSet"] == "CAP_NET_RAW"
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) > 10
    assert service["ProtectSystem"] == "strict" and service["StateDirectory"] == "kuzot"
    assert parser["Unit"]["After"] == "network.target"
    # A bad config (exit 2) is not restarted every 10 s forever; other exits are.
    assert service["Restart"] == "always" and service["RestartPreventExitStatus"] == "2"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    result = subprocess.run([analyze(), "verify", str(unit_for_this_machine(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_rates_the_exposure_low(tmp_path: Path) -> None:
    result = subprocess.run([analyze(), "security", "--offline=yes", "--no-pager",
                             str(unit_for_this_machine(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5, result.stdout
