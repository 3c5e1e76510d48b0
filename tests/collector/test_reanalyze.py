"""``python -m collector reanalyze`` on a real store (SQLite and PostgreSQL).

The store holds what probes of two rule versions sent for the same observations (the
analysis table's cases): version 2 verdicts as today's probe writes them, and version 1
verdicts as the probe wrote them before ``analysis_version`` and ``evidence_fields`` existed.
Version 1 let a page that came only through another resolver than the system one make the
verdict ``ok`` (the change that made version 2, R12 in
``probe.nettests.web_connectivity.analysis``); those cases are recorded here with that
``ok``. Re-analysis must rewrite exactly the version 1 verdicts, change exactly the R12 cases,
keep what the probe sent, and leave every other byte alone.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.api.validate import validate
from collector.config import Limits
from collector.detect import extract, observed
from collector.detect.model import Run
from collector.reanalyze import RECORDED, reanalyze
from collector.store import TIME_FORMAT, VERDICTS, Filters, Store, open_store
from collector.store.archive import ArchiveError, archive
from collector.store.archive_targets import LocalTarget
from probe.core.measurement import envelope
from probe.nettests.web_connectivity import analysis
from tests.probe.nettests.web_connectivity.test_analysis_table import ROWS

NOW = datetime.now(UTC).replace(microsecond=0)
INSIDE = NOW - timedelta(hours=2)
OUTSIDE = NOW - timedelta(days=3)
SINCE = NOW - timedelta(days=1)


def _measurement(row: Any, started: datetime) -> dict[str, Any]:
    url, keys = row.build()
    keys = {**keys, **analysis.analyze(keys, url, row.cc)}
    return envelope(test_name="web_connectivity", input_=url, test_keys=keys, started=started,
                    runtime=1.0, cc=row.cc or "KG", asn="AS8449", probe_id="p1")


def _version_1(m: dict[str, Any]) -> dict[str, Any]:
    """``m`` as the version 1 rules recorded it."""
    old = copy.deepcopy(m)
    verdict = old["test_keys"]["analysis"]
    del verdict["analysis_version"], verdict["evidence_fields"]
    if any(e.startswith("alternative_resolver_reached:") for e in verdict["evidence"]):
        verdict.update(verdict="ok", layer=None, mechanism=None, confidence=0.8,
                       evidence=["http_status:200"])
    return old


def _top_level_failure(started: datetime) -> dict[str, Any]:
    keys = {"failure": "generic_timeout_error", "operation": "top_level",
            "analysis": {"verdict": "inconclusive", "layer": None, "mechanism": None,
                         "confidence": 0.0, "evidence": ["top_level_failure"]}}
    m = envelope(test_name="web_connectivity", input_="https://kloop.kg/", test_keys=keys,
                 started=started, runtime=0.0, cc="KG", asn="AS8449", probe_id="p1")
    del m["test_keys"]["analysis"]["evidence_fields"]
    return m


class Stored:
    """What went into the store, by kind."""

    def __init__(self) -> None:
        self.current = [_measurement(row, INSIDE) for row in ROWS]
        self.old = [_version_1(_measurement(row, INSIDE)) for row in ROWS]
        self.outside = [_version_1(_measurement(ROWS[0], OUTSIDE))]
        self.failed = [_top_level_failure(INSIDE)]
        self.r12 = [old for old, new in zip(self.old, self.current, strict=True)
                    if any(e.startswith("alternative_resolver_reached:")
                           for e in new["test_keys"]["analysis"]["evidence"])]

    def all(self) -> list[dict[str, Any]]:
        return [*self.current, *self.old, *self.outside, *self.failed]


async def _fill(store: Store) -> tuple[Stored, dict[str, str]]:
    stored = Stored()
    rows = [validate(m, Limits(), NOW, "p1") for m in stored.all()]
    await store.add_measurements(rows)
    return stored, {r.uid: r.body for r in rows}


async def _bodies(store: Store, uids: list[str]) -> dict[str, str]:
    return await store.measurement_bodies(uids)


async def _observations_follow(store: Store, bodies: dict[str, str], changed: set[str]) -> None:
    """Every row's stored observation (what detection reads instead of the body) is what
    detection makes of its document as it is now, re-analysed or not; the ``changed`` rows'
    runs are now blocked."""
    feed = {r.uid: r for r in await store.measurement_feed(0, 10_000)}
    assert set(feed) == set(bodies)
    for uid, body in bodies.items():
        stored_one = feed[uid].observation
        assert stored_one is not None and feed[uid].body == ""
        assert observed.decode(stored_one, "p1") == extract.observation(json.loads(body), "p1")
    assert changed and all(isinstance(o := observed.decode(str(feed[u].observation), "p1"), Run)
                           and o.outcome == "blocked" for u in changed)


def _time(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


async def test_reanalysis_rewrites_old_verdicts_and_keeps_what_the_probe_sent(
        store: Store) -> None:
    stored, before = await _fill(store)
    old_uids = [m["measurement_uid"] for m in stored.old]
    assert len(stored.r12) >= 5

    dry = await reanalyze(store, _time(SINCE), dry_run=True)
    assert (dry.examined, dry.current, dry.reanalysed, dry.not_rerunnable, dry.stored) == (
        len(stored.current) + len(stored.old) + 1, len(stored.current), len(stored.old), 1, 0)
    assert dry.changed == len(stored.r12) and dry.unchanged == len(stored.old) - len(stored.r12)
    assert sum(v for k, v in dry.changes.items() if k.startswith("ok/None/None -> blocked/dns/")
               ) == len(stored.r12)
    assert await _bodies(store, list(before)) == before  # a dry run writes nothing

    done = await reanalyze(store, _time(SINCE), page=7)  # several pages
    assert (done.reanalysed, done.changed, done.stored) == (
        len(stored.old), len(stored.r12), len(stored.old))
    after = await _bodies(store, list(before))
    await _observations_follow(store, after, {m["measurement_uid"] for m in stored.r12})
    for m, current in zip(stored.old, stored.current, strict=True):
        uid = m["measurement_uid"]
        document = json.loads(after[uid])
        keys = document["test_keys"]
        # The new verdict is today's, with its typed evidence; the probe's is kept.
        assert keys["analysis"] == current["test_keys"]["analysis"]
        assert keys[RECORDED] == json.loads(before[uid])["test_keys"]["analysis"]
        # Every other byte is as stored: put the recorded verdict back and compare.
        keys["analysis"] = keys.pop(RECORDED)
        assert json.dumps(document, ensure_ascii=False, separators=(",", ":")) == before[uid]
    untouched = [m["measurement_uid"] for m in [*stored.current, *stored.outside,
                                                *stored.failed]]
    assert {u: after[u] for u in untouched} == {u: before[u] for u in untouched}

    # The verdict columns follow: the R12 cases are now blocked at the DNS.
    r12_uids = {m["measurement_uid"] for m in stored.r12}
    listed = await store.measurements(Filters(since=_time(SINCE), verdict="ok"), limit=1000)
    assert not r12_uids & {r["uid"] for r in listed}
    blocked = await store.measurements(Filters(since=_time(SINCE), verdict="blocked",
                                               domain=None), limit=1000)
    assert r12_uids <= {r["uid"] for r in blocked}
    assert set(old_uids) <= set(before)
    # The aggregation, answered from the rollups for whole days and hours, moved with them.
    for since in (INSIDE.strftime("%Y-%m-%d 00:00:00"), INSIDE.strftime("%Y-%m-%d %H:00:00")):
        listed_all = await store.measurements(Filters(since=since), limit=1000)
        totals = (await store.aggregate(Filters(since=since), (), 10))[0]
        for verdict in VERDICTS:
            assert totals[f"{verdict}_count"] == sum(r["verdict"] == verdict for r in listed_all)
        for verdict in ("ok", "blocked"):
            groups = await store.aggregate(Filters(since=since, verdict=verdict), ("input",),
                                           1000)
            assert groups and all(g["measurement_count"] > 0 for g in groups)

    # Again: nothing is older any more, and the recorded verdict is not overwritten.
    again = await reanalyze(store, _time(SINCE))
    assert (again.reanalysed, again.current, again.stored) == (
        0, len(stored.current) + len(stored.old), 0)
    assert await _bodies(store, list(before)) == after


async def test_until_bounds_the_window(store: Store) -> None:
    stored, before = await _fill(store)
    report = await reanalyze(store, _time(OUTSIDE - timedelta(hours=1)),
                             _time(OUTSIDE + timedelta(hours=1)))
    assert (report.examined, report.reanalysed, report.stored) == (1, 1, 1)
    uid = stored.outside[0]["measurement_uid"]
    assert RECORDED in json.loads((await _bodies(store, [uid]))[uid])["test_keys"]


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector", "reanalyze", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_reports_counts_and_writes_only_without_dry_run(database: str) -> None:
    store = await open_store(database)
    try:
        stored, before = await _fill(store)
    finally:
        await store.close()
    since = SINCE.strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = await _cli("--since", since, "--dry-run", "--database", database)
    assert code == 0, err
    dry = json.loads(out)
    assert (dry["dry_run"], dry["reanalysed"], dry["changed"], dry["stored"]) == (
        True, len(stored.old), len(stored.r12), 0)
    code, out, err = await _cli("--since", since, "--database", database)
    assert code == 0, err
    done = json.loads(out)
    assert (done["reanalysed"], done["stored"], done["current"]) == (
        len(stored.old), len(stored.old), len(stored.current))
    store = await open_store(database)
    try:
        after = await _bodies(store, list(before))
    finally:
        await store.close()
    changed = [u for u in before if after[u] != before[u]]
    assert sorted(changed) == sorted(m["measurement_uid"] for m in stored.old)


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "'yesterday' is not an ISO 8601 time"),
    (["--since", "2024-05-02", "--until", "2024-05-01"], "--until must be after --since"),
])
async def test_bad_times_exit_2(args: list[str], message: str, tmp_path: Any) -> None:
    code, _out, err = await _cli(*args, "--database", str(tmp_path / "db.sqlite"))
    assert code == 2 and message in err


async def test_a_mistyped_database_is_an_error_not_an_empty_one(tmp_path: Any) -> None:
    missing = tmp_path / "nowhere" / "kuzot.sqlite"
    code, out, err = await _cli("--since", "2024-05-01", "--database", str(missing))
    assert code == 1 and out == ""
    assert f"database unavailable: {missing} does not exist" in err
    assert not missing.parent.exists()


async def test_an_archived_measurement_stays_archived(database: str, tmp_path: Path) -> None:
    """Re-analysis of archived rows writes their new documents to new archive files, read
    back and compared, and moves the rows' references there: no body comes back into the
    database, the files written before keep the documents as they were, and the answers are
    those of a store that was never archived."""
    root = tmp_path / "archive"
    store = await open_store(database, archive_dir=str(root))
    try:
        stored, before = await _fill(store)
        everything = _time(NOW + timedelta(hours=1))
        moved = await archive(store, LocalTarget(root), everything)
        assert moved.emptied == len(before)
        files = {p: p.read_bytes() for p in root.rglob("*.jsonl.gz")}
        refs = await store.archive_refs(list(before))
        assert set(refs) == set(before)

        done = await reanalyze(store, _time(SINCE), page=7)
        assert (done.reanalysed, done.stored) == (len(stored.old), len(stored.old))
        old_uids = {m["measurement_uid"] for m in stored.old}
        # Still archived, nothing in the database to archive again; re-analysed rows point
        # at new files, the others where they were.
        assert await store.archive_candidates(everything, None, 1000) == []
        now_refs = await store.archive_refs(list(before))
        assert set(now_refs) == set(before)
        assert {u for u in before if now_refs[u] != refs[u]} == old_uids
        assert all(now_refs[u].split(":")[0] not in {r.split(":")[0] for r in refs.values()}
                   for u in old_uids)
        assert {p: p.read_bytes() for p in files} == files  # old files as written
        after = await store.measurement_bodies(list(before))
        await _observations_follow(store, after, {m["measurement_uid"] for m in stored.r12})
        for m, current in zip(stored.old, stored.current, strict=True):
            uid = m["measurement_uid"]
            keys = json.loads(after[uid])["test_keys"]
            assert keys["analysis"] == current["test_keys"]["analysis"]
            assert keys[RECORDED] == json.loads(before[uid])["test_keys"]["analysis"]
        assert {u: after[u] for u in before if u not in old_uids} == \
            {u: before[u] for u in before if u not in old_uids}
        blocked = await store.measurements(Filters(since=_time(SINCE), verdict="blocked"),
                                           limit=1000)
        assert {m["measurement_uid"] for m in stored.r12} <= {r["uid"] for r in blocked}
    finally:
        await store.close()
    reopened = await open_store(database, archive_dir=str(root))
    try:
        assert await reopened.measurement_bodies(list(before)) == after
        again = await reanalyze(reopened, _time(SINCE))
        assert (again.reanalysed, again.stored) == (0, 0)
    finally:
        await reopened.close()


class _FullDisk(LocalTarget):
    """The archive directory as it is when its disk is full: files read, none written."""

    def put(self, name: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", name)


async def test_archived_rows_keep_their_verdict_when_the_archive_cannot_be_written(
        database: str, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    store = await open_store(database, archive_dir=str(root))
    try:
        _, before = await _fill(store)
        await archive(store, LocalTarget(root), _time(NOW + timedelta(hours=1)))
        listed = await store.measurements(Filters(since=_time(SINCE)), limit=1000)
        refs = await store.archive_refs(list(before))
        store.archive_target = _FullDisk(root)
        with pytest.raises(ArchiveError, match="No space left"):
            await reanalyze(store, _time(SINCE))
        assert await store.measurements(Filters(since=_time(SINCE)), limit=1000) == listed
        assert await store.archive_refs(list(before)) == refs
        assert await store.measurement_bodies(list(before)) == before
    finally:
        await store.close()
