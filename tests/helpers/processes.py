"""Child processes for tests: this interpreter on a module, and commands without raw sockets.

Tests run the product as an operator would (``python -m probe ...``, ``python -m collector
...``); what they differ in is only the arguments, so how a child is started and read lives here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

import pytest


async def run_python(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``python ARGS`` (this interpreter); returns (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def without_net_raw(command: list[str]) -> list[str]:
    """``command`` run without CAP_NET_RAW. As root it is wrapped in ``setpriv`` dropping the
    capability from the inheritable and bounding sets (the test fails without util-linux's
    setpriv, which would otherwise leave the capability in place unnoticed); an ordinary user
    has no such capability, so the command is unchanged."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to drop CAP_NET_RAW as root")
    return [setpriv, "--inh-caps=-net_raw", "--bounding-set=-net_raw", *command]
