"""``python -m probe run --once`` as a volunteer runs it: the lists come from the real
collector on loopback, and the next start without the collector measures the kept copy."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import sys
from pathlib import Path

import yaml

from collector.config import CollectorConfig, TargetListsConfig
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_data
from tests.helpers.servers import page_app, serve_app


async def run_once(config: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "probe", "run", "--config", str(config), "--once", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode()


def measured(spool: str) -> list[str]:
    """The sites the daemon measured, one entry per measurement (its own verdict table)."""
    with sqlite3.connect(spool) as db:
        return [row[0] for row in db.execute(
            "SELECT target FROM verdicts WHERE test_name = 'web_connectivity' ORDER BY seq")]


async def test_run_measures_the_served_list_and_then_its_copy_without_the_collector(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    async with serve_app(page_app()) as port:
        lists = tmp_path / "served"
        (lists / "curated").mkdir(parents=True)
        (lists / "kg.csv").write_text(
            f"url,category,cc\nhttp://127.0.0.1:{port}/served,NEWS,KG\n")
        (lists / "curated" / "global.csv").write_text("url,category,cc\n")
        config = dataclasses.replace(collector_config, target_lists=TargetListsConfig(
            directory=str(lists)))
        collector = SwitchableCollector(config, free_port())
        token = await issue_token(config, "kg-process")
        files = tmp_path / "local.csv"
        files.write_text(f"url,category,cc\nhttp://127.0.0.1:{port}/from-file,NEWS,KG\n")
        data = loopback_data(tmp_path, collector.base, token, [], port,
                             target_files=[str(files)])
        path = tmp_path / "probe.yaml"
        path.write_text(yaml.safe_dump(data))
        await collector.start()
        try:
            code, err = await run_once(path)
        finally:
            await collector.stop()
        assert code == 0, err
        assert "target lists: fetched version" in err and "1 targets" in err
        with sqlite3.connect(config.database) as db:
            inputs = {row[0] for row in db.execute("SELECT input FROM measurements")}
        assert f"http://127.0.0.1:{port}/served" in inputs
        assert f"http://127.0.0.1:{port}/from-file" not in inputs
        # The collector is gone: the next start measures the kept copy, not the files.
        code, err = await run_once(path)
        assert code == 0, err
        assert "did not answer" in err and "measuring the copy of version" in err
        assert measured(data["spool_path"]) == [f"http://127.0.0.1:{port}/served"] * 2
