"""The throttling tests' allowance of the day's one data budget, in the local database: counts
survive a restart, a new UTC day starts from zero, an older probe's budget file is read once,
and the day's whole budget binds both ways (sites <-> throttling transfers)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import trustme
from aiohttp import web

from probe.core.measurement import envelope
from probe.daemon.budget import LAST_ROUND, ByteBudget, migrate_file
from probe.local.journal import Journal
from probe.local.localdb import LocalDB
from probe.nettests.throttling import measure as throttle
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import serve_app, server_context
from tests.helpers.virtual_clock import VirtualClock

DAY = 86400.0
NOON = 20000 * DAY + 12 * 3600  # a fixed UTC noon
NOON_DAY = datetime.fromtimestamp(NOON, UTC).strftime("%Y-%m-%d")
OBJECT = 300 * 1024  # each transfer's object; the kernel receives it all before the abort
LIMIT = 256 * 1024  # bytes per transfer


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_charges_accumulate_and_survive_a_restart(tmp_path: Path) -> None:
    path, clock = str(tmp_path / "probe.sqlite"), Clock(NOON)
    db = await LocalDB.open(path)
    budget = ByteBudget(1_000_000, db, clock=clock)
    assert await budget.allows(1_000_000)
    await budget.charge(600_000)
    assert await budget.remaining() == 400_000
    await db.close()
    db = await LocalDB.open(path)
    again = ByteBudget(1_000_000, db, clock=clock)
    assert await again.remaining() == 400_000
    assert not await again.allows(524_288)
    await db.close()


async def test_a_new_day_starts_fresh(tmp_path: Path) -> None:
    db, clock = await LocalDB.open(str(tmp_path / "probe.sqlite")), Clock(NOON)
    budget = ByteBudget(1_000_000, db, clock=clock)
    await budget.charge(900_000)
    clock.now += 12 * 3600  # past midnight UTC
    assert await budget.remaining() == 1_000_000
    assert await ByteBudget(1_000_000, db, clock=clock).remaining() == 1_000_000
    await db.close()


async def test_round_cadence(tmp_path: Path) -> None:
    db, clock = await LocalDB.open(str(tmp_path / "probe.sqlite")), Clock(NOON)
    budget = ByteBudget(1_000_000, db, clock=clock)
    assert await budget.due(6 * 3600)
    await budget.mark_round()
    clock.now += 3600
    assert not await ByteBudget(1_000_000, db, clock=clock).due(6 * 3600)
    clock.now += 5 * 3600
    assert await ByteBudget(1_000_000, db, clock=clock).due(6 * 3600)
    await db.close()


async def test_without_a_database_it_counts_in_memory() -> None:
    budget = ByteBudget(1000, clock=Clock(NOON))
    await budget.charge(400)
    assert await budget.remaining() == 600


async def test_what_is_left_of_the_day_caps_the_allowance() -> None:
    left = {"bytes": 500}
    budget = ByteBudget(1000, day_left=lambda: left["bytes"], clock=Clock(NOON))
    assert await budget.remaining() == 500
    await budget.charge(300)  # not yet in the day's count: this round's own transfers
    assert await budget.remaining() == 200
    left["bytes"] = 0
    assert await budget.remaining() == 0 and not await budget.allows(1)


# -- the file of an older probe ----------------------------------------------------------------


async def test_the_budget_file_is_read_once_into_the_database(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "probe.sqlite"))
    legacy = tmp_path / "var" / "throttle-budget.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({"day": NOON_DAY, "used": 700_000, "last_round": NOON - 60}))
    assert await migrate_file(db, legacy, NOON)
    assert not legacy.exists()
    assert json.loads((legacy.parent / "throttle-budget.json.migrated").read_text())["used"] \
        == 700_000
    budget = ByteBudget(1_000_000, db, clock=Clock(NOON))
    assert await budget.used() == 700_000
    assert await budget.last_round() == NOON - 60
    assert not await budget.due(6 * 3600)
    # Once: a second start finds no file and counts nothing twice.
    assert not await migrate_file(db, legacy, NOON)
    assert await budget.used() == 700_000
    await db.close()


async def test_a_file_of_an_earlier_day_keeps_only_the_last_round(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "probe.sqlite"))
    legacy = tmp_path / "throttle-budget.json"
    legacy.write_text(json.dumps({"day": "2000-01-01", "used": 700_000,
                                  "last_round": NOON - DAY}))
    assert await migrate_file(db, legacy, NOON)
    budget = ByteBudget(1_000_000, db, clock=Clock(NOON))
    assert await budget.used() == 0
    assert await Journal(db).get(LAST_ROUND) == repr(NOON - DAY)
    await db.close()


async def test_an_unreadable_file_is_set_aside_and_counts_nothing(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "probe.sqlite"))
    legacy = tmp_path / "throttle-budget.json"
    legacy.write_text("{not json")
    assert await migrate_file(db, legacy, NOON)
    assert (tmp_path / "throttle-budget.json.migrated").read_text() == "{not json"
    budget = ByteBudget(1000, db, clock=Clock(NOON))
    assert await budget.remaining() == 1000 and await budget.last_round() is None
    await db.close()


async def test_the_daemon_migrates_the_file_at_start(tmp_path: Path) -> None:
    legacy = tmp_path / "throttle-budget.json"
    legacy.write_text(json.dumps({"day": NOON_DAY, "used": 123_456, "last_round": NOON - 60}))
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9,
                             throttling={"enabled": True, "budget_file": str(legacy)})
    clock = VirtualClock(datetime.fromtimestamp(NOON, UTC))
    daemon, db, _spool = await make_daemon(config, tmp_path, clock=clock)
    await daemon.start()
    await daemon.shutdown()
    assert not legacy.exists()
    assert await daemon.throttling_budget().used() == 123_456
    await db.close()


# -- one day, one budget -----------------------------------------------------------------------


def bulk_app() -> web.Application:
    body = bytes(range(256)) * (OBJECT // 256)

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


async def throttling_keys(budget: ByteBudget, port: int, ca_file: str) -> dict[str, object]:
    options = throttle.ThrottleOptions(
        repetitions=3, byte_limit=LIMIT, transfer_timeout=2.0, ca_file=ca_file,
        resolve={"target.test": "127.0.0.1", "baseline.test": "127.0.0.1"})
    return await throttle.measure(f"https://target.test:{port}/",
                                  f"https://baseline.test:{port}/", options, budget=budget,
                                  rng=random.Random(3))


async def test_a_day_the_sites_spent_runs_no_throttling_transfer(
        ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9,
                             budget={"daily_mb": 1}, throttling={"enabled": True})
    clock = VirtualClock(datetime.fromtimestamp(NOON, UTC))
    daemon, db, _spool = await make_daemon(config, tmp_path, clock=clock)
    await daemon.journal.add_usage(NOON_DAY, traffic=1_000_000)  # the sites' day
    await daemon.refresh_usage()
    budget = daemon.throttling_budget()
    assert await budget.remaining() == 0  # its own allowance (100 MB) is untouched
    async with serve_app(bulk_app(), server_context(ca, "target.test", "baseline.test")) \
            as port:
        keys = await throttling_keys(budget, port, ca_file)
    assert keys["flows"] == [] and keys["x_budget"] == {
        "bytes_used": 0, "skipped_flows": 6, "daily_bytes": 100_000_000,
        "remaining_bytes": 0}
    # Nor does the daemon start a round on such a day.
    assert not await daemon.jobs["throttling"].admit(daemon, "throttling", "", 0.0)
    assert daemon.skipped_budget == 1
    await db.close()


async def test_a_day_throttling_spent_measures_no_more_sites(
        ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    # 0.9 MB a day: two transfers (~600 KiB) leave enough for a third, which overshoots.
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None,
                             [{"url": "https://site.test/"}], 9,
                             budget={"daily_mb": 0.9}, throttling={"enabled": True})
    clock = VirtualClock(datetime.fromtimestamp(NOON, UTC))
    daemon, db, spool = await make_daemon(config, tmp_path, clock=clock)
    await daemon.refresh_usage()
    site = "target:https://site.test/"
    assert await daemon.jobs["target"].admit(daemon, site, "https://site.test/", 0.0)
    budget = daemon.throttling_budget()
    async with serve_app(bulk_app(), server_context(ca, "target.test", "baseline.test")) \
            as port:
        keys = await throttling_keys(budget, port, ca_file)
    x_budget = keys["x_budget"]
    assert isinstance(x_budget, dict) and x_budget["skipped_flows"] == 3
    assert await budget.used() == x_budget["bytes_used"] > 900_000
    await daemon.record(envelope(test_name="throttling", input_="https://target.test/",
                                 test_keys=keys, started=clock.now(), runtime=1.0, cc="KG",
                                 asn="AS8449"))
    assert daemon.used_today >= 900_000
    assert not await daemon.jobs["target"].admit(daemon, site, "https://site.test/", 0.0)
    assert daemon.skipped_budget == 1
    assert [e.test_name for e in spool.recorded] == ["throttling"]
    await db.close()
