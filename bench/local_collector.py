"""The collector the probe benches upload to: a ``python -m collector serve`` child process on
loopback, with an SQLite file in the bench's work directory, the bench's test CA for the
control, no rate limit to speak of, and one probe token.

Shared by ``probe_footprint.py`` and ``probe_day.py``, which measure the probe, not this.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.ports import free_port

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class LocalCollector:
    """Where the collector listens, its config and database files, and the probe's token."""
    port: int
    config: Path
    database: Path
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def prepare(work: Path, ca_file: Path, probe_id: str = "bench") -> LocalCollector:
    """Write the collector's config under ``work`` and issue ``probe_id`` a token."""
    port = free_port()
    config, database = work / "collector.yaml", work / "kuzot.sqlite"
    config.write_text(json.dumps({  # JSON is YAML
        "listen": f"127.0.0.1:{port}", "database": str(database),
        "control": {"allow_private_addresses": True, "ca_file": str(ca_file)},
        "limits": {"rate_per_minute": 100000}}))
    token = subprocess.run([sys.executable, "-m", "collector", "token", "issue", "--probe-id",
                            probe_id, "--config", str(config)], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.strip()
    return LocalCollector(port, config, database, token)


def start(collector: LocalCollector) -> subprocess.Popen[bytes]:
    """Start serving (output discarded); stop it with ``stop``."""
    return subprocess.Popen([sys.executable, "-m", "collector", "serve", "--config",
                             str(collector.config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=20)


async def wait_for(port: int, patience: float = 60.0) -> None:
    """Until the collector accepts connections (it starts slowly on a busy machine)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        else:
            writer.close()
            await writer.wait_closed()
            return
