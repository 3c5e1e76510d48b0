"""The collector as a child process on a loopback port, as an operator runs it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``python -m collector ARGS``; returns (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def issue_token(database: str, probe_id: str) -> str:
    code, out, err = await cli("token", "issue", "--probe-id", probe_id, "--database", database)
    assert code == 0, err
    return out.strip()


@dataclass
class Served:
    base: str
    process: asyncio.subprocess.Process


async def _wait_healthy(base: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            if process.returncode is not None:
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
    """``python -m collector serve --listen 127.0.0.1:PORT ARGS``; killed at the end."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "serve", "--listen", f"127.0.0.1:{port}", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    served = Served(f"http://127.0.0.1:{port}", process)
    try:
        await _wait_healthy(served.base, process)
        yield served
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
