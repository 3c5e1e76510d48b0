"""Archiving moves old bodies to files and loses nothing, on SQLite and PostgreSQL: bodies read
back byte-identical after a reopen, summary rows and rollups unchanged, and a failure between
the steps of the move leaves every body in the database."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest

from collector.store import Store
from collector.store.archive import MEMBER_LINES, ArchiveError, ArchiveUnreadable, archive
from collector.store.archive_targets import LocalTarget
from tests.collector.factory import stored
from tests.helpers.archive import CUT, archive_store, snapshot, three_days


async def test_archive_then_reopen_reads_every_body_back(database: str,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "archive"
    rows = three_days()
    async with archive_store(database, root, rows=rows) as store:
        before = await snapshot(store)
        dry = await archive(store, LocalTarget(root), CUT, dry_run=True)
        assert (dry.bodies, dry.emptied) == (12, 0)
        assert not root.exists()
        report = await archive(store, LocalTarget(root), CUT)
        assert (report.bodies, report.emptied) == (12, 12)
        assert sorted(report.files) == sorted(dry.files)
        assert await snapshot(store) == before  # summary rows and rollups untouched
        again = await archive(store, LocalTarget(root), CUT)
        assert (again.bodies, again.emptied) == (0, 0)

    # OONI's layout: <test>/<day>/<cc>.jsonl.gz, one document a line, as stored.
    with gzip.open(root / "web_connectivity" / "2024-05-01" / "KZ.jsonl.gz", "rt",
                   encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")[:-1]
    expected = [r.body for r in rows if r.start_time.startswith("2024-05-01")
                and r.probe_cc == "KZ" and r.test_name == "web_connectivity"]
    assert lines == expected
    assert not (root / "web_connectivity" / "2024-05-03").exists()

    async with archive_store(database, root) as reopened:
        bodies = await reopened.measurement_bodies([r.uid for r in rows])
        assert bodies == {r.uid: r.body for r in rows}
        assert await snapshot(reopened) == before
        # Detection catching up from the start reads archived bodies back too.
        feed = await reopened.measurement_feed(0, 1000)
        assert sorted(f.body for f in feed) == sorted(r.body for r in rows)
        newer = await reopened.archive_candidates("2024-05-04 00:00:00", None, 100)
        assert sorted(c.uid for c in newer) == sorted(r.uid for r in rows[12:])


@pytest.mark.parametrize("step", ["written", "verified"])
async def test_failure_between_steps_empties_nothing(database: str, tmp_path: Path,
                                                     step: str) -> None:
    root = tmp_path / "archive"
    rows = three_days()
    async with archive_store(database, root, rows=rows) as store:
        def crash(at: str, name: str) -> None:
            if at == step:
                raise OSError(f"power lost after {at} {name}")

        with pytest.raises(OSError, match="power lost"):
            await archive(store, LocalTarget(root), CUT, checkpoint=crash)
        assert len(await store.archive_candidates(CUT, None, 100)) == 12
        assert await store.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}
        # The next run moves them all; the file left by the failed one is never reused.
        report = await archive(store, LocalTarget(root), CUT)
        assert report.emptied == 12
        assert any(".2.jsonl.gz" in f for f in report.files)
        assert await store.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}


async def test_a_file_that_does_not_read_back_empties_nothing(database: str,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "archive"
    rows = three_days()
    async with archive_store(database, root, rows=rows) as store:
        def damage(at: str, name: str) -> None:
            if at == "written":
                path = root / name
                data = path.read_bytes()
                path.write_bytes(data[:len(data) // 2])

        with pytest.raises(ArchiveError):
            await archive(store, LocalTarget(root), CUT, checkpoint=damage)
        assert len(await store.archive_candidates(CUT, None, 100)) == 12


async def test_a_body_replaced_after_reading_is_not_emptied(store: Store) -> None:
    row = stored(start_time="2024-05-01 10:00:00")
    await store.add_measurements([row])
    [candidate] = await store.archive_candidates(CUT, None, 10)
    new_body = '{"measurement_uid":"re-analysed"}'
    assert await store.replace_analysis(row.uid, new_body, "blocked", "tls", "reset")
    assert await store.mark_archived([(candidate, "web_connectivity/x/KG.jsonl.gz:0:0")]) == 0
    assert await store.measurement_bodies([row.uid]) == {row.uid: new_body}


async def test_a_missing_archive_file_is_unavailable_not_wrong(database: str,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "archive"
    row = stored(start_time="2024-05-01 10:00:00")
    async with archive_store(database, root, rows=[row]) as store:
        report = await archive(store, LocalTarget(root), CUT)
        (root / report.files[0]).unlink()
        with pytest.raises(ArchiveUnreadable):
            await store.measurement_bodies([row.uid])


async def test_a_day_of_many_members_reads_as_one_gzip_stream(database: str,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "archive"
    count = 2 * MEMBER_LINES + 50  # three gzip members
    rows = [stored(start_time=f"2024-05-01 {i // 60 % 24:02d}:{i % 60:02d}:00",
                   uid=f"u{i:04d}", body=f'{{"measurement_uid":"u{i:04d}","x":{i}}}')
            for i in range(count)]
    async with archive_store(database, root, rows=rows) as store:
        report = await archive(store, LocalTarget(root), CUT)
        assert report.emptied == count
        [name] = report.files
        with gzip.open(root / name, "rt", encoding="utf-8") as f:
            assert f.read().splitlines() == [r.body for r in
                                              sorted(rows, key=lambda r: (r.start_time, r.uid))]
        sample = [r.uid for r in rows[::37]] + [rows[-1].uid]
        assert await store.measurement_bodies(sample) == \
            {r.uid: r.body for r in rows if r.uid in sample}


async def test_an_archived_rows_observation_stays_with_its_summary_row(
        database: str, tmp_path: Path) -> None:
    """Detection catching up on archived rows reads their stored observations: no archive is
    needed for them (here none is configured when it reads)."""
    root = tmp_path / "archive"
    rows = [dataclasses.replace(r, observation=f'[1,"n{i}"]')
            for i, r in enumerate(three_days())]
    async with archive_store(database, root, rows=rows) as store:
        report = await archive(store, LocalTarget(root), CUT)
        assert report.emptied == 12
    async with archive_store(database) as reopened:
        feed = await reopened.measurement_feed(0, 1000)
        assert sorted((f.uid, f.observation, f.body) for f in feed) == sorted(
            (r.uid, r.observation, "") for r in rows)
        with pytest.raises(ArchiveUnreadable):
            await reopened.measurement_bodies([rows[0].uid])  # its body is archived
