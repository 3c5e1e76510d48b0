"""Fixtures of the probe daemon's tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def fast_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory in RAM when the system has one: the spool still commits with
    ``synchronous=FULL``, but the flushes cost nothing, so simulated days run in seconds.
    (Durability on a real disk is proven by the crash test in ``test_spool``.)"""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="kuzot-test-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
