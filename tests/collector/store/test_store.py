"""The storage contract, run unchanged on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from collector.store import COUNT_COLUMNS, Filters, Store, open_store
from collector.store import postgres as pg_store
from collector.store import sqlite as sqlite_store
from tests.collector.factory import stored


async def test_add_is_idempotent_by_uid(store: Store) -> None:
    first = [stored(), stored()]
    assert await store.add_measurements(first) == [r.uid for r in first]
    again = [first[1], stored(), first[0]]
    assert await store.add_measurements(again) == [again[1].uid]
    assert await store.add_measurements(first) == []
    assert await store.count_measurements() == 3


async def test_duplicate_uid_inside_one_batch_is_stored_once(store: Store) -> None:
    row = stored()
    assert await store.add_measurements([row, row]) == [row.uid]
    assert await store.count_measurements() == 1


async def test_concurrent_overlapping_batches_claim_each_uid_once(store: Store) -> None:
    rows = [stored(start_time=f"2024-05-01 12:00:{i:02d}") for i in range(30)]
    batches = [rows[i:i + 12] for i in range(0, 30, 3)]
    results = await asyncio.gather(*(store.add_measurements(b) for b in batches))
    claimed = [uid for result in results for uid in result]
    assert sorted(claimed) == sorted(r.uid for r in rows)
    assert await store.count_measurements() == 30


async def test_two_stores_on_one_database_claim_each_uid_once(database: str) -> None:
    first, second = await open_store(database), await open_store(database)
    try:
        rows = [stored(start_time=f"2024-05-0{1 + i % 3} 08:00:{i:02d}") for i in range(40)]
        results = await asyncio.gather(
            *(s.add_measurements(rows[i:i + 20]) for i in range(0, 40, 5)
              for s in (first, second)))
        claimed = [uid for result in results for uid in result]
        assert sorted(claimed) == sorted(r.uid for r in rows)
        assert await first.count_measurements() == 40
        assert await second.count_measurements() == 40
    finally:
        await first.close()
        await second.close()


async def test_rows_round_trip_with_the_same_types(store: Store) -> None:
    row = stored(uid="20240501T120000Z_KG_web_rt", input="https://Kloop.KG:443/news?x=1",
                 verdict="blocked", layer="tls", mechanism="reset",
                 location_source="geoip", location_mismatch=True, probe_asn="AS12997")
    await store.add_measurements([row])
    [got] = await store.measurements(Filters())
    assert got == {
        "uid": row.uid, "probe_id": "p1", "test_name": "web_connectivity",
        "input": "https://Kloop.KG:443/news?x=1", "domain": "kloop.kg", "probe_cc": "KG",
        "probe_asn": "AS12997", "start_time": "2024-05-01 12:00:00",
        "received_at": "2024-05-01 12:05:00", "verdict": "blocked", "layer": "tls",
        "mechanism": "reset", "location_source": "geoip", "location_mismatch": True,
    }
    assert await store.measurement_bodies([row.uid, "unknown-uid"]) == {row.uid: row.body}


async def test_pages_cover_everything_once_in_a_stable_order(store: Store) -> None:
    # Equal start times and uids that sort differently under a locale collation than
    # bytewise ("a" < "B" in en_US, "B" < "a" in C): pagination must still agree.
    uids = ["a-1", "B_2", "b.3", "Z9", "z_0", "A.a", "0x", "_u", "-v", "c"]
    rows = [stored(uid=f"{u}-{i}", start_time=f"2024-05-0{1 + i % 2} 10:00:00")
            for i, u in enumerate(uids * 2)]
    await store.add_measurements(rows)
    everything = await store.measurements(Filters(), limit=100)
    expected = sorted(((r.start_time, r.uid) for r in rows), reverse=True)
    assert [(r["start_time"], r["uid"]) for r in everything] == expected
    seen: list[tuple[str, str]] = []
    after = None
    while True:
        page = await store.measurements(Filters(), after=after, limit=7)
        seen += [(r["start_time"], r["uid"]) for r in page]
        if len(page) < 7:
            break
        after = seen[-1]
    assert seen == expected


FILTER_CASES: list[tuple[str, Filters, set[str]]] = [
    ("all", Filters(), {"kg-ok", "kg-blocked", "kz-down", "kz-telegram", "kg-old"}),
    ("since inclusive", Filters(since="2024-05-02 00:00:00"),
     {"kg-blocked", "kz-down", "kz-telegram"}),
    ("until exclusive", Filters(until="2024-05-02 00:00:00"), {"kg-ok", "kg-old"}),
    ("window", Filters(since="2024-05-01 00:00:00", until="2024-05-03 00:00:00"),
     {"kg-ok", "kg-blocked", "kz-down"}),
    ("cc", Filters(cc="KZ"), {"kz-down", "kz-telegram"}),
    ("asn", Filters(asn="AS8449"), {"kg-ok", "kg-blocked", "kg-old"}),
    ("test_name", Filters(test_name="telegram"), {"kz-telegram"}),
    ("input", Filters(input="https://vlast.kz/"), {"kz-down"}),
    ("domain", Filters(domain="kloop.kg"), {"kg-ok", "kg-blocked", "kg-old"}),
    ("verdict", Filters(verdict="blocked"), {"kg-blocked"}),
    ("combined", Filters(cc="KG", verdict="ok", since="2024-04-01 00:00:00"), {"kg-ok"}),
    ("nothing", Filters(cc="UZ"), set()),
]


async def _filter_corpus(store: Store) -> None:
    await store.add_measurements([
        stored(uid="kg-ok", start_time="2024-05-01 09:00:00"),
        stored(uid="kg-blocked", start_time="2024-05-02 09:00:00", verdict="blocked"),
        stored(uid="kz-down", start_time="2024-05-02 10:00:00", verdict="down",
               probe_cc="KZ", probe_asn="AS9198", input="https://vlast.kz/"),
        stored(uid="kz-telegram", start_time="2024-05-03 10:00:00", probe_cc="KZ",
               probe_asn="AS9198", test_name="telegram", input=None),
        stored(uid="kg-old", start_time="2024-03-15 10:00:00", verdict=None),
    ])


@pytest.mark.parametrize(("name", "filters", "expected"), FILTER_CASES,
                         ids=[c[0] for c in FILTER_CASES])
async def test_filters(store: Store, name: str, filters: Filters, expected: set[str]) -> None:
    await _filter_corpus(store)
    assert {r["uid"] for r in await store.measurements(filters)} == expected


def _counts(**counts: int) -> dict[str, int]:
    out = dict.fromkeys(COUNT_COLUMNS, 0)
    out.update({f"{k}_count": v for k, v in counts.items()})
    return out


async def test_aggregation_by_axes(store: Store) -> None:
    await _filter_corpus(store)
    assert await store.aggregate(Filters(), (), 100) == [
        _counts(measurement=5, ok=2, blocked=1, down=1)]
    by_day = await store.aggregate(Filters(cc="KG"), ("day",), 100)
    assert by_day == [
        {"day": "2024-03-15", **_counts(measurement=1)},
        {"day": "2024-05-01", **_counts(measurement=1, ok=1)},
        {"day": "2024-05-02", **_counts(measurement=1, blocked=1)},
    ]
    by_hour = await store.aggregate(Filters(since="2024-05-02 00:00:00"), ("hour",), 100)
    assert [r["hour"] for r in by_hour] == [
        "2024-05-02 09:00:00", "2024-05-02 10:00:00", "2024-05-03 10:00:00"]
    by_domain = await store.aggregate(Filters(), ("domain", "test_name"), 100)
    assert [(r["domain"], r["test_name"], r["measurement_count"]) for r in by_domain] == [
        ("kloop.kg", "web_connectivity", 3), ("vlast.kz", "web_connectivity", 1),
        (None, "telegram", 1)]
    by_network = await store.aggregate(Filters(), ("cc", "asn"), 100)
    assert [(r["cc"], r["asn"], r["ok_count"], r["down_count"]) for r in by_network] == [
        ("KG", "AS8449", 1, 0), ("KZ", "AS9198", 1, 1)]
    by_input = await store.aggregate(Filters(verdict="blocked"), ("input",), 100)
    assert by_input == [{"input": "https://kloop.kg/", **_counts(measurement=1, blocked=1)}]
    # One group more than allowed comes back, so the caller can tell the answer was cut.
    assert len(await store.aggregate(Filters(), ("input",), 1)) == 2


async def test_latest_by_target_is_the_newest_whatever_the_arrival_order(store: Store) -> None:
    await store.add_measurements([
        stored(uid="new", start_time="2024-05-02 10:00:00", verdict="blocked", layer="dns",
               mechanism="nxdomain"),
        stored(uid="other-network", start_time="2024-05-01 10:00:00", probe_asn="AS12997"),
        stored(uid="platform", start_time="2024-05-01 10:00:00", test_name="telegram",
               input=None, verdict="ok"),
    ])
    # A late upload of an older measurement does not replace the newer state.
    await store.add_measurements([stored(uid="old", start_time="2024-05-01 10:00:00")])
    await store.add_measurements([stored(uid="new", start_time="2024-05-03 10:00:00")])
    latest = await store.latest_by_target()
    assert latest == [
        {"probe_cc": "KG", "probe_asn": "AS8449", "test_name": "telegram", "input": None,
         "verdict": "ok", "layer": None, "mechanism": None, "start_time": "2024-05-01 10:00:00"},
        {"probe_cc": "KG", "probe_asn": "AS12997", "test_name": "web_connectivity",
         "input": "https://kloop.kg/", "verdict": "ok", "layer": None, "mechanism": None,
         "start_time": "2024-05-01 10:00:00"},
        {"probe_cc": "KG", "probe_asn": "AS8449", "test_name": "web_connectivity",
         "input": "https://kloop.kg/", "verdict": "blocked", "layer": "dns",
         "mechanism": "nxdomain", "start_time": "2024-05-02 10:00:00"},
    ]
    # The scrape-time read: the same rows, only the columns the metrics need, any order.
    assert sorted(await store.target_verdicts()) == sorted(
        (r["probe_cc"], r["probe_asn"], r["test_name"], r["input"] or "", r["verdict"])
        for r in latest)


async def test_latest_by_target_inside_one_batch_is_its_newest_row(store: Store) -> None:
    # One batch often holds several rounds of one target (a probe catching up): only the
    # newest row, by start time then uid, is the target's state, whatever the batch order.
    rows = [stored(uid="b-mid", start_time="2024-05-01 11:00:00", verdict="down"),
            stored(uid="b-new-2", start_time="2024-05-01 12:00:00", verdict="blocked",
                   layer="tcp", mechanism="reset"),
            stored(uid="b-old", start_time="2024-05-01 10:00:00", verdict="ok"),
            stored(uid="b-new-1", start_time="2024-05-01 12:00:00", verdict="ok")]
    await store.add_measurements(rows)
    assert [(r["start_time"], r["verdict"], r["mechanism"])
            for r in await store.latest_by_target()] == [
        ("2024-05-01 12:00:00", "blocked", "reset")]
    # A later batch with an older row of the target changes nothing.
    await store.add_measurements([stored(uid="b-late", start_time="2024-05-01 09:00:00",
                                         verdict="down")])
    assert [r["verdict"] for r in await store.latest_by_target()] == ["blocked"]


async def test_months_apart_are_all_stored_and_found(store: Store) -> None:
    months = ["2023-12-31 23:59:59", "2024-01-01 00:00:00", "2024-02-29 12:00:00",
              "2024-12-01 00:00:00"]
    rows = [stored(start_time=t) for t in months]
    assert len(await store.add_measurements(rows)) == 4
    found = await store.measurements(Filters(since="2024-01-01 00:00:00",
                                             until="2024-12-01 00:00:00"))
    assert [r["start_time"] for r in found] == ["2024-02-29 12:00:00", "2024-01-01 00:00:00"]


async def test_heartbeats_keep_liveness_per_probe(store: Store) -> None:
    await store.add_heartbeat("p1", "2024-05-01 10:00:00", "2024-05-01 10:00:02", "{}",
                              queue_depth=3, software_version="0.1.0")
    await store.add_heartbeat("p2", "2024-05-01 10:00:30", "2024-05-01 10:00:31", "{}")
    await store.add_heartbeat("p1", "2024-05-01 10:01:00", "2024-05-01 10:01:01", "{}",
                              queue_depth=0)
    # A delayed heartbeat that arrives after a newer one does not move last_seen back.
    await store.add_heartbeat("p1", "2024-05-01 09:59:00", "2024-05-01 10:00:59", "{}",
                              queue_depth=9)
    assert await store.probes() == [
        {"probe_id": "p1", "first_seen": "2024-05-01 10:00:02",
         "last_seen": "2024-05-01 10:01:01", "sent_at": "2024-05-01 10:01:00",
         "queue_depth": 0, "software_version": "0.1.0"},
        {"probe_id": "p2", "first_seen": "2024-05-01 10:00:31",
         "last_seen": "2024-05-01 10:00:31", "sent_at": "2024-05-01 10:00:30",
         "queue_depth": None, "software_version": None},
    ]


async def test_tokens_issue_revoke_reissue(store: Store) -> None:
    assert await store.probe_for_token("h1") is None
    await store.add_token("p1", "h1", "2024-05-01 10:00:00")
    await store.add_token("p2", "h2", "2024-05-01 10:00:00")
    assert await store.probe_for_token("h1") == ("p1", False)
    assert await store.revoke_token("p1", "2024-05-02 10:00:00") is True
    assert await store.revoke_token("p1", "2024-05-02 10:00:00") is False
    assert await store.revoke_token("nobody", "2024-05-02 10:00:00") is False
    assert await store.probe_for_token("h1") == ("p1", True)
    assert await store.tokens() == [
        {"probe_id": "p1", "created_at": "2024-05-01 10:00:00",
         "revoked_at": "2024-05-02 10:00:00"},
        {"probe_id": "p2", "created_at": "2024-05-01 10:00:00", "revoked_at": None},
    ]
    await store.add_token("p1", "h3", "2024-05-03 10:00:00")
    assert await store.probe_for_token("h3") == ("p1", False)
    assert await store.probe_for_token("h1") is None


async def test_leases_elect_one_holder_until_expiry(store: Store) -> None:
    now, later, much_later = "2024-05-01 10:00:00", "2024-05-01 10:00:30", "2024-05-01 10:02:00"
    assert await store.acquire_lease("detect", "a", now, "2024-05-01 10:01:00")
    assert not await store.acquire_lease("detect", "b", later, "2024-05-01 10:01:30")
    assert await store.acquire_lease("detect", "a", later, "2024-05-01 10:01:30")  # renew
    assert await store.acquire_lease("other", "b", later, "2024-05-01 10:01:30")
    assert await store.acquire_lease("detect", "b", much_later, "2024-05-01 10:03:00")
    assert not await store.acquire_lease("detect", "a", much_later, "2024-05-01 10:03:00")
    await store.release_lease("detect", "a")  # not the holder: no effect
    assert not await store.acquire_lease("detect", "a", much_later, "2024-05-01 10:03:00")
    await store.release_lease("detect", "b")
    assert await store.acquire_lease("detect", "a", much_later, "2024-05-01 10:03:00")


async def test_leases_race_has_one_winner(database: str) -> None:
    stores = [await open_store(database) for _ in range(2)]
    try:
        results = await asyncio.gather(*(
            s.acquire_lease("detect", f"holder-{i}-{j}", "2024-05-01 10:00:00",
                            "2024-05-01 10:01:00")
            for j, s in enumerate(stores) for i in range(5)))
        assert results.count(True) == 1
    finally:
        for s in stores:
            await s.close()


async def test_schema_is_versioned_and_reopening_keeps_data(database: str) -> None:
    first = await open_store(database)
    await first.add_measurements([stored(uid="kept-1")])
    version = await first.schema_version()
    await first.close()
    expected = (len(pg_store.MIGRATIONS) if database.startswith("postgresql")
                else len(sqlite_store.MIGRATIONS))
    assert version == expected
    second = await open_store(database)
    try:
        assert await second.schema_version() == expected
        assert [r["uid"] for r in await second.measurements(Filters())] == ["kept-1"]
        bodies = await second.measurement_bodies(["kept-1"])
        assert json.loads(bodies["kept-1"]) == {"measurement_uid": "kept-1"}
    finally:
        await second.close()


async def test_concurrent_opens_migrate_once(database: str) -> None:
    stores: list[Any] = await asyncio.gather(*(open_store(database) for _ in range(4)))
    try:
        versions = {await s.schema_version() for s in stores}
        assert len(versions) == 1
    finally:
        for s in stores:
            await s.close()
