"""The collector as a child process on a loopback port, as an operator runs it.

Two faces of the one launcher: ``serve``/``cli``/``issue_token`` for asyncio tests, and
``CollectorProcess`` for code that is not async (fault tests that SIGKILL the server from a
thread, benches). Both run ``python -m collector`` and wait for ``/healthz`` to answer 200.
``CollectorProcess`` can also run the collector under a command prefix (``ip netns exec NS``,
``setpriv ...``), reach it through sockets made elsewhere (inside that namespace) and keep its
standard error in a file, for tests that must run it as an operator would somewhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.helpers.ports import free_port
from tests.helpers.processes import run_python


async def cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``python -m collector ARGS``; returns (exit code, stdout, stderr)."""
    return await run_python("-m", "collector", *args, timeout=timeout)


async def issue_token(database: str, probe_id: str) -> str:
    code, out, err = await cli("token", "issue", "--probe-id", probe_id, "--database", database)
    assert code == 0, err
    return out.strip()


@dataclass
class Served:
    base: str
    process: asyncio.subprocess.Process


async def wait_healthy(base: str, process: asyncio.subprocess.Process | None = None,
                       attempts: int = 150) -> None:
    """Poll ``base/healthz`` every 0.1 s until it answers 200; fail early if ``process``
    (the server) has exited."""
    async with aiohttp.ClientSession() as session:
        for _ in range(attempts):
            if process is not None and process.returncode is not None:
                raise AssertionError(f"collector exited with {process.returncode}")
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("collector did not become healthy")


@contextlib.asynccontextmanager
async def serve(*args: str) -> AsyncIterator[Served]:
    """``python -m collector serve --listen 127.0.0.1:PORT ARGS``; killed at the end unless
    the test has stopped it itself."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "serve", "--listen", f"127.0.0.1:{port}", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    served = Served(f"http://127.0.0.1:{port}", process)
    try:
        await wait_healthy(served.base, process)
        yield served
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


Connect = Callable[[tuple[str, int]], socket.socket]
"""Opens a TCP connection to an address (``socket.create_connection`` by default)."""


class CollectorProcess:
    """The collector under a config file in ``tmp`` (SQLite there), started and stopped by
    plain calls: ``kill`` is SIGKILL, ``stop`` SIGTERM.

    ``prefix`` goes before ``python -m collector serve`` (``ip netns exec NS``); ``connect``
    opens the connections of ``get`` and of the health check (a socket made inside that
    namespace); ``stderr`` is a file that collects the process's standard error (appended
    to across restarts), else it is discarded."""

    def __init__(self, tmp: Path, extra_yaml: str = "", prefix: Sequence[str] = (),
                 connect: Connect | None = None, stderr: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = tmp / "kuzot.sqlite"
        self.config = tmp / "collector.yaml"
        self.config.write_text(f"listen: 127.0.0.1:{self.port}\ndatabase: {self.database}\n"
                               + extra_yaml)
        self.prefix = tuple(prefix)
        self.connect: Connect | None = connect
        self.stderr = stderr
        self.process: subprocess.Popen[bytes] | None = None

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """``GET path``: the status and the body, whatever the status."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if self.connect is not None:
            connection.sock = self.connect(("127.0.0.1", self.port))
            connection.sock.settimeout(timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def issue_token(self, probe_id: str) -> str:
        out = subprocess.run([sys.executable, "-m", "collector", "token", "issue",
                              "--probe-id", probe_id, "--config", str(self.config)],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start(self) -> None:
        command = [*self.prefix, sys.executable, "-m", "collector", "serve", "--config",
                   str(self.config)]
        if self.stderr is None:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        else:
            with self.stderr.open("ab") as errors:
                self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                                stderr=errors)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited with {self.process.returncode}")
            if self.connect is None:
                try:
                    with urllib.request.urlopen(self.base + "/healthz", timeout=1) as response:
                        if response.status == 200:
                            return
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            else:
                try:
                    if self.get("/healthz", timeout=1)[0] == 200:
                        return
                except (OSError, http.client.HTTPException):
                    pass
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


@contextlib.contextmanager
def started(tmp: Path, extra_yaml: str, probe_id: str) -> Iterator[tuple[CollectorProcess, str]]:
    """A started ``CollectorProcess`` and a token issued to ``probe_id`` before the start;
    stopped (SIGTERM) at the end."""
    process = CollectorProcess(tmp, extra_yaml)
    token = process.issue_token(probe_id)
    process.start()
    try:
        yield process, token
    finally:
        process.stop()
