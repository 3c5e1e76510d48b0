"""The operator's path, on the real collector process: ingest over HTTP, stop, run
``python -m collector archive``, start again, and read every measurement back from the
measurements API (``full=true``) exactly as before the archive; on SQLite and PostgreSQL (which
drops the months of bodies all archived), to a directory and to an S3-compatible bucket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.collector.factory import measurement
from tests.helpers.collector_process import cli, issue_token, serve
from tests.helpers.s3_server import ACCESS_KEY, REGION, SECRET_KEY, s3_server


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


@pytest.fixture(params=["directory", "bucket"])
def archive_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ``storage`` keys for archives in a local directory or in an S3-compatible bucket
    (moto's server, an emulation of S3 over HTTP, in its own process)."""
    if request.param == "directory":
        yield f"archive_dir: {tmp_path / 'archive'}"
        return
    with s3_server() as s3:
        s3.create_bucket("kuzot-archive")
        (tmp_path / "s3-secret").write_text(SECRET_KEY + "\n")
        yield (f"archive_url: s3://kuzot-archive/kg, s3_endpoint: {s3.endpoint}, "
               f"s3_region: {REGION}, s3_access_key_id: {ACCESS_KEY}, "
               f"s3_secret_access_key_file: s3-secret")


async def test_ingest_archive_restart_reads_every_uid_back(database: str, tmp_path: Path,
                                                          archive_storage: str) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text("limits: {rate_per_minute: 1000000}\n"
                      f"storage: {{archive_after: 1d, {archive_storage}}}\n")
    token = await issue_token(database, "p1")
    # Days ago and months ago: PostgreSQL drops the months that end before the cut-off.
    old = [measurement(ago=timedelta(days=(2 + i % 3) if i < 30 else 40 + i),
                       probe_cc=("KG", "KZ")[i % 2]) for i in range(60)]
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
    report = json.loads(out)
    assert report["emptied"] == 60
    cut = datetime.strptime(report["before"], "%Y-%m-%d %H:%M:%S")
    months = {m["measurement_start_time"][:7].replace("-", "") for m in old}
    ended = sorted(f"measurement_bodies_p{m}" for m in months
                   if _month_end(m) <= cut)
    assert len(ended) >= 2
    assert report["partitions_dropped"] == (ended if database.startswith("postgresql")
                                            else [])
    if "archive_dir" in archive_storage:
        files = list((tmp_path / "archive").glob("web_connectivity/*/*.jsonl.gz"))
        assert {f.name for f in files} == {"KG.jsonl.gz", "KZ.jsonl.gz"}

    async with serve("--config", str(config), "--database", database) as collector:
        after = await _everything(collector.base)
    assert after == before


def _month_end(month: str) -> datetime:
    year, number = int(month[:4]), int(month[4:])
    return datetime(year + number // 12, number % 12 + 1, 1)


async def test_archive_is_off_unless_configured(tmp_path: Path) -> None:
    database = str(tmp_path / "kuzot.sqlite")
    await issue_token(database, "p1")  # creates the database
    code, out, err = await cli("archive", "--database", database)
    assert code == 2 and out == ""
    assert "storage.archive_after is not set" in err
