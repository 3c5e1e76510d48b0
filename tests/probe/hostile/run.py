"""Run ``python -m probe check --json`` as a child process and measure what it cost.

The peak resident set of the check comes from ``os.wait4`` (the kernel's ``ru_maxrss`` of
exactly that process) in a small launcher (``peak.py``; see there why). The child runs in a
thread so the test's event loop keeps serving the hostile servers meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEAK = Path(__file__).with_name("peak.py")

# Short timeouts keep the suite quick; the memory bounds do not depend on them.
TIMEOUTS = ("--timeout", "dns=2", "--timeout", "connect=3", "--timeout", "tls=3",
            "--timeout", "http=6")
COLLECTOR_DOCUMENT_LIMIT = 2 * 1024 * 1024


@dataclass
class Checked:
    returncode: int
    stdout: bytes
    stderr: bytes
    peak_rss_bytes: int
    seconds: float

    @property
    def measurement(self) -> dict[str, Any]:
        value = json.loads(self.stdout)
        assert isinstance(value, dict)
        return value

    @property
    def keys(self) -> dict[str, Any]:
        keys = self.measurement["test_keys"]
        assert isinstance(keys, dict)
        return keys


def run_check_sync(url: str, *args: str, timeout: float = 120.0,
                   prefix: tuple[str, ...] = ()) -> Checked:
    """Run one check to completion (killed after ``timeout`` seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        started = time.monotonic()
        process = subprocess.Popen(
            [*prefix, sys.executable, "-S", str(PEAK), peak.name,
             sys.executable, "-m", "probe", "check", url, "--json", *TIMEOUTS, *args],
            stdout=out, stderr=err)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Checked(process.returncode, out.read(), err.read(), int(peak.read() or 0),
                       seconds)


async def run_check(url: str, *args: str, timeout: float = 120.0) -> Checked:
    return await asyncio.to_thread(run_check_sync, url, *args, timeout=timeout)


def requests_of(checked: Checked) -> list[dict[str, Any]]:
    requests = checked.keys["requests"]
    assert isinstance(requests, list)
    return requests
