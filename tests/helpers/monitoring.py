"""Real Prometheus, Alertmanager and their tools from Debian's packages, run on loopback.

A test that needs one calls ``binary(...)``: without the package it is skipped with the reason
locally, and fails in CI (``CI=true``), where ``.ci/run`` installs the packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers.ports import free_port


def binary(*names: str) -> str:
    """The path of the first of ``names`` on PATH; skip (or fail in CI) when none is."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    reason = f"{' or '.join(names)} not installed (Debian: prometheus, prometheus-alertmanager)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd,
                          check=False)


async def _wait_ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if process.returncode is not None:
                raise AssertionError(f"{url} exited: {log.read_text()[-2000:]}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready: {log.read_text()[-2000:]}")


@contextlib.asynccontextmanager
async def _process(args: list[str], ready_url: str, log: Path) -> AsyncIterator[None]:
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        await _wait_ready(ready_url, process, log)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def prometheus(config: str, directory: Path) -> AsyncIterator[str]:
    """Run Prometheus with ``config`` (YAML text) in ``directory``; yields its base URL."""
    exe = binary("prometheus")
    port = free_port()
    (directory / "prometheus.yml").write_text(config)
    args = [exe, f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    base = f"http://127.0.0.1:{port}"
    async with _process(args, base + "/-/ready", directory / "prometheus.log"):
        yield base


@contextlib.asynccontextmanager
async def alertmanager(config: str, directory: Path) -> AsyncIterator[str]:
    """Run Alertmanager with ``config`` on loopback, clustering off; yields its base URL."""
    exe = binary("prometheus-alertmanager", "alertmanager")
    port = free_port()
    (directory / "alertmanager.yml").write_text(config)
    # An empty cluster address turns gossip off, so nothing listens beyond the one port.
    args = [exe, f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=warn"]
    base = f"http://127.0.0.1:{port}"
    async with _process(args, base + "/-/ready", directory / "alertmanager.log"):
        yield base


async def query(base: str, expr: str, **params: Any) -> dict[str, Any]:
    """Run a PromQL query (instant, or range with start/end/step); returns the API's data."""
    path = "/api/v1/query_range" if "step" in params else "/api/v1/query"
    async with aiohttp.ClientSession() as session, session.post(
            base + path, data={"query": expr, **{k: str(v) for k, v in params.items()}}
    ) as response:
        body = await response.json()
    if body.get("status") != "success":
        raise AssertionError(f"query failed: {expr}: {body.get('error')}")
    data: dict[str, Any] = body["data"]
    return data
