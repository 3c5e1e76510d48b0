"""The operator's path, on the real collector process: ingest over HTTP, stop, run
``python -m collector archive``, start again, and read every measurement back from the
measurements API (``full=true``) exactly as before the archive."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.collector.factory import measurement
from tests.helpers.collector_process import cli, issue_token, serve


async def _everything(base: str) -> dict[str, str]:
    """uid -> the API's JSON text of that measurement (with its body), every page."""
    found: dict[str, str] = {}
    url = base + "/api/v1/measurements?full=true&limit=50"
    async with aiohttp.ClientSession() as session:
        cursor: str | None = None
        while True:
            async with session.get(url + (f"&cursor={cursor}" if cursor else "")) as response:
                assert response.status == 200
                page: dict[str, Any] = await response.json()
            for row in page["measurements"]:
                found[row["uid"]] = json.dumps(row, ensure_ascii=False, sort_keys=True)
            cursor = page["next_cursor"]
            if cursor is None:
                return found


async def test_ingest_archive_restart_reads_every_uid_back(database: str,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text("limits: {rate_per_minute: 1000000}\n"
                      f"storage: {{archive_after: 1d, archive_dir: {tmp_path / 'archive'}}}\n")
    token = await issue_token(database, "p1")
    old = [measurement(ago=timedelta(days=2 + i % 3), probe_cc=("KG", "KZ")[i % 2])
           for i in range(60)]
    recent = [measurement() for _ in range(10)]
    async with serve("--config", str(config), "--database", database) as collector, \
            aiohttp.ClientSession() as session:
        for batch in (old[:30], old[30:], recent):
            async with session.post(collector.base + "/api/v1/measurements",
                                    headers={"Authorization": f"Bearer {token}"},
                                    json={"measurements": batch}) as response:
                assert response.status == 200, await response.text()
        before = await _everything(collector.base)
    assert len(before) == 70

    code, out, err = await cli("archive", "--dry-run", "--config", str(config),
                               "--database", database)
    assert code == 0, err
    assert json.loads(out)["bodies"] == 60 and json.loads(out)["emptied"] == 0
    assert not (tmp_path / "archive").exists()
    code, out, err = await cli("archive", "--config", str(config), "--database", database)
    assert code == 0, err
    assert json.loads(out)["emptied"] == 60
    files = list((tmp_path / "archive").glob("web_connectivity/*/*.jsonl.gz"))
    assert {f.name for f in files} == {"KG.jsonl.gz", "KZ.jsonl.gz"}

    async with serve("--config", str(config), "--database", database) as collector:
        after = await _everything(collector.base)
    assert after == before


async def test_archive_is_off_unless_configured(tmp_path: Path) -> None:
    database = str(tmp_path / "kuzot.sqlite")
    await issue_token(database, "p1")  # creates the database
    code, out, err = await cli("archive", "--database", database)
    assert code == 2 and out == ""
    assert "storage.archive_after is not set" in err
