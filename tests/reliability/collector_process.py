"""Run the real collector as a child process on a loopback port, for fault tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CollectorProcess:
    def __init__(self, tmp: Path, extra_yaml: str = "") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = tmp / "kuzot.sqlite"
        self.config = tmp / "collector.yaml"
        self.config.write_text(f"listen: 127.0.0.1:{self.port}\ndatabase: {self.database}\n"
                               + extra_yaml)
        self.process: subprocess.Popen[bytes] | None = None

    def issue_token(self, probe_id: str) -> str:
        out = subprocess.run([sys.executable, "-m", "collector", "token", "issue",
                              "--probe-id", probe_id, "--config", str(self.config)],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector", "serve", "--config", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError("collector did not start")

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
