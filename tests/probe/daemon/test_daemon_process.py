"""``python -m probe run`` and ``status`` as a volunteer runs them: a real process, real
signals, a real collector on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import CollectorConfig
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_data
from tests.helpers.servers import page_app, serve_app

IP_LIKE = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


async def probe(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "probe", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def finish(process: asyncio.subprocess.Process, timeout: float = 30) -> tuple[
        int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def stored_count(database: str) -> int:
    try:
        with sqlite3.connect(database) as db:
            return int(db.execute("SELECT count(*) FROM measurements").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def spooled(path: str) -> int:
    """Measurements the daemon has committed to its spool so far."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'enqueued'").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_daemon_stops_cleanly_on_a_signal_and_logs_nothing_identifying(
        tmp_path: Path, collector_config: CollectorConfig, signum: signal.Signals) -> None:
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-process")
    await collector.start()
    try:
        async with serve_app(page_app()) as port:
            data = loopback_data(tmp_path, collector.base, token,
                                 [{"url": f"http://127.0.0.1:{port}/"}], port,
                                 schedule={"interval": "1h"})
            config = write_config(tmp_path, data)
            process = await probe("run", "--config", str(config))
            try:
                for _ in range(400):
                    if spooled(data["spool_path"]) >= 1:
                        break
                    await asyncio.sleep(0.05)
            finally:
                process.send_signal(signum)
            code, _out, err = await finish(process)
    finally:
        await collector.stop()
    assert spooled(data["spool_path"]) >= 1, err
    assert code == 0, err
    assert "probe stopped" in err
    assert token not in err
    assert not IP_LIKE.search(err), err
    with sqlite3.connect(data["spool_path"]) as spool:
        state = dict(spool.execute("SELECT key, value FROM state"))
    assert "stopped_at" in state


async def test_run_refuses_a_config_without_consent(tmp_path: Path) -> None:
    data = loopback_data(tmp_path, "http://127.0.0.1:9", "t", [], 9)
    del data["consent"]
    process = await probe("run", "--config", str(write_config(tmp_path, data)))
    code, _out, err = await finish(process)
    assert code == 2
    assert "python -m probe init" in err
    assert not Path(data["spool_path"]).exists()


async def test_once_then_status_tells_what_happened(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-status")
    await collector.start()
    try:
        async with serve_app(page_app()) as port:
            url = f"http://127.0.0.1:{port}/"
            data = loopback_data(tmp_path, collector.base, token, [{"url": url}], port,
                                 budget={"daily_mb": 20})
            config = write_config(tmp_path, data)
            code, _out, err = await finish(await probe("run", "--config", str(config),
                                                       "--once"))
    finally:
        await collector.stop()
    assert code == 0, err
    assert stored_count(collector_config.database) == 2  # the ladder and the site

    code, text, err = await finish(await probe("status", "--config", str(config)))
    assert code == 0, err
    assert "0 measurements waiting" in text
    assert re.search(r"uploaded\s+2 in total; last success \d{4}-", text), text
    assert "heartbeat      last answered 20" in text
    assert re.search(r"data today\s+0\.\d MB of 20\.0 MB budget, 2 measurements", text), text
    assert re.search(rf"{re.escape(url)}\s+ok", text), text
    assert re.search(r"connectivity\s+online", text), text

    code, raw, err = await finish(await probe("status", "--config", str(config), "--json"))
    report = json.loads(raw)
    assert report["counters"]["uploaded"] == 2 and report["spool"]["measurements"] == 0
    assert report["recent"][url][0]["verdict"] == "ok"
    assert report["today"]["measurements"] == 2 and report["today"]["bytes"] > 0


async def test_status_without_a_spool_says_so(tmp_path: Path) -> None:
    data = loopback_data(tmp_path, "http://127.0.0.1:9", "t", [], 9)
    code, _out, err = await finish(await probe(
        "status", "--config", str(write_config(tmp_path, data))))
    assert code == 2 and "has not run" in err


async def test_a_second_daemon_on_the_same_spool_exits_2_naming_the_first(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    """Two ``probe run`` on one config would share the spool and upload, count and evict
    each other's measurements; the second one stops at once, and the lock dies with the
    first process however it ends."""
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-lock")
    await collector.start()
    try:
        async with serve_app(page_app()) as port:
            data = loopback_data(tmp_path, collector.base, token,
                                 [{"url": f"http://127.0.0.1:{port}/"}], port,
                                 schedule={"interval": "1h"})
            config = write_config(tmp_path, data)
            first = await probe("run", "--config", str(config))
            try:
                for _ in range(400):
                    if spooled(data["spool_path"]) >= 1:
                        break
                    await asyncio.sleep(0.05)
                assert spooled(data["spool_path"]) >= 1
                code, _out, err = await finish(await probe("run", "--config", str(config)))
                assert code == 2, err
                assert f"process {first.pid} already runs a probe on this spool" in err
                assert "Traceback" not in err
                assert first.returncode is None  # the first one runs on, untouched
            finally:
                # SIGKILL: no handler, no release; the kernel drops the lock with the process.
                first.kill()
                await first.wait()
            code, _out, err = await finish(await probe("run", "--config", str(config),
                                                       "--once"))
    finally:
        await collector.stop()
    assert code == 0, err
