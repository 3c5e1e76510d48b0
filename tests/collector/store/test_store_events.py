"""Detection's part of the storage contract, run unchanged on SQLite and PostgreSQL: events
upserted in place and filtered, feeds that resume after a cursor and never skip a row, and
the detector's saved state."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from collector.store import EventFilter, Filters, Store
from tests.collector.factory import stored


def event(id_: str, start: str, end: str | None, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id_, "kind": "block", "tier": "likely", "status": "open" if end is None else
        "closed", "start": start, "end": end, "updated_at": end or start, "cc": "KZ",
        "asns": ["AS9198", "AS48716"], "targets": ["https://vlast.kz/"],
        "mechanism": "timeout", "probes": 4,
        "evidence": {"scope": "national", "members": [{"asn": "AS9198", "runs": 12}],
                     "note": "Қазақстан"}}
    base.update(changes)
    return base


async def test_events_are_upserted_in_place_and_round_trip(store: Store) -> None:
    first = event("e1", "2024-05-01T10:00:00Z", None)
    await store.upsert_events([first])
    assert await store.events(EventFilter()) == [first]
    grown = event("e1", "2024-05-01T10:00:00Z", "2024-05-01T12:00:00Z", tier="confirmed",
                  targets=["https://vlast.kz/", "https://rus.azattyq.org/"])
    await store.upsert_events([grown])
    assert await store.events(EventFilter()) == [grown]


async def test_event_filters(store: Store) -> None:
    events = [
        event("a", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        event("b", "2024-05-02T10:00:00Z", None, kind="shutdown", tier="confirmed",
              asns=["AS29355"], targets=[], mechanism=None),
        event("c", "2024-05-03T10:00:00Z", None, cc="KG", asns=["AS8449"], tier="suspected"),
    ]
    await store.upsert_events(events)

    async def ids(**query: Any) -> list[str]:
        return [e["id"] for e in await store.events(EventFilter(**query))]

    assert await ids() == ["c", "b", "a"]  # latest start first
    assert await ids(cc="KZ") == ["b", "a"]
    assert await ids(asn="AS9198") == ["a"]
    assert await ids(asn="AS919") == []  # whole ASNs only
    assert await ids(kind="shutdown") == ["b"]
    assert await ids(status="closed") == ["a"]
    assert await ids(tier="suspected") == ["c"]
    # Overlap: "a" ended before 2024-05-01T12:00, the open ones are still going.
    assert await ids(since="2024-05-01T12:00:00Z") == ["c", "b"]
    assert await ids(until="2024-05-02T10:00:00Z") == ["a"]
    assert await ids(since="2024-05-01T10:30:00Z", until="2024-05-02T11:00:00Z") == ["b", "a"]
    assert await ids(limit=1) == ["c"]


async def test_measurement_and_heartbeat_feeds_resume_after_their_cursor(store: Store) -> None:
    assert await store.measurement_feed(0, 10) == []
    rows = [stored(start_time=f"2024-05-01 12:00:{i:02d}") for i in range(5)]
    await store.add_measurements(rows[:3])
    await store.add_measurements(rows[3:])
    feed = await store.measurement_feed(0, 100)
    assert [json.loads(r.body)["measurement_uid"] for r in feed] == [r.uid for r in rows]
    assert all(r.probe_id == "p1" and r.received_at == "2024-05-01 12:05:00" for r in feed)
    assert [r.seq for r in feed] == sorted(r.seq for r in feed)
    assert await store.measurement_feed(feed[-1].seq, 100) == []
    later = stored(start_time="2024-05-01 13:00:00")
    await store.add_measurements([later])
    [row] = await store.measurement_feed(feed[-1].seq, 100)
    assert json.loads(row.body)["measurement_uid"] == later.uid

    for i in range(3):
        await store.add_heartbeat("p1", f"2024-05-01 12:0{i}:00", f"2024-05-01 12:0{i}:01",
                                  json.dumps({"n": i}))
    beats = await store.heartbeat_feed(0, 100)
    assert [json.loads(b.body)["n"] for b in beats] == [0, 1, 2]
    assert beats[0].received_at == "2024-05-01 12:00:01"
    assert await store.heartbeat_feed(beats[-1].seq, 100) == []


async def test_a_feed_read_while_batches_commit_misses_nothing(store: Store) -> None:
    """Readers racing concurrent writers: every row is handed out exactly once."""
    rows = [stored(start_time=f"2024-05-01 12:{i // 60:02d}:{i % 60:02d}") for i in range(120)]
    seen: list[str] = []
    cursor = 0
    done = asyncio.Event()

    async def write() -> None:
        await asyncio.gather(*(store.add_measurements(rows[i:i + 4])
                               for i in range(0, 120, 4)))
        done.set()

    async def read() -> None:
        nonlocal cursor
        while True:
            finished = done.is_set()
            batch = await store.measurement_feed(cursor, 7)
            if batch:
                cursor = batch[-1].seq
                seen.extend(json.loads(r.body)["measurement_uid"] for r in batch)
            elif finished:
                return
            await asyncio.sleep(0)

    await asyncio.gather(write(), read())
    assert sorted(seen) == sorted(r.uid for r in rows)


async def test_a_feed_page_is_bounded_in_rows_whatever_the_batch_sizes(store: Store) -> None:
    """Detection reads the feed a page at a time to bound its memory: a page of about
    ``limit`` rows, not ``limit`` batches (PostgreSQL gives whole batches, up to the one that
    reaches ``limit``); and a page shorter than ``limit`` is the end of what is stored, which
    is how the pipeline knows it has caught up."""
    rows = [stored(start_time=f"2024-05-01 12:{i // 60:02d}:{i % 60:02d}") for i in range(120)]
    for start in range(0, 120, 30):
        await store.add_measurements(rows[start:start + 30])
    seen: list[str] = []
    pages: list[int] = []
    cursor = 0
    while page := await store.measurement_feed(cursor, 50):
        assert 0 < len(page) < 50 + 30  # at most one batch past the limit
        pages.append(len(page))
        cursor = page[-1].seq
        seen.extend(json.loads(r.body)["measurement_uid"] for r in page)
    assert seen == [r.uid for r in rows]
    assert all(size >= 50 for size in pages[:-1])  # only the last page is short
    first = await store.measurement_feed(0, 10)
    assert first and len(first) in (10, 30)  # 10 rows, or the whole first batch alone
    assert [json.loads(r.body)["measurement_uid"] for r in first] == [
        r.uid for r in rows[:len(first)]]


async def test_detection_state_is_saved_and_replaced(store: Store) -> None:
    assert await store.load_state("detection") is None
    await store.save_state("detection", '{"v": 1}', "2024-05-01 12:00:00")
    await store.save_state("detection", '{"v": 2}', "2024-05-01 12:01:00")
    assert await store.load_state("detection") == '{"v": 2}'
    assert await store.load_state("other") is None


async def test_a_stored_observation_is_fed_instead_of_the_body(store: Store) -> None:
    """A row stored with its observation (``collector.detect.observed``) is fed with it and
    without its body; a row without one (older rows) with its body; re-analysis replaces
    the observation or, given none, leaves the row to be read from its body."""
    seen = '[1,"ladder","KG","AS8449",1714564800.0,true,"online"]'
    rows = [stored(start_time="2024-05-01 12:00:00", observation=seen),
            stored(start_time="2024-05-01 12:00:01"),
            stored(start_time="2024-05-01 12:00:02", observation="[1]")]
    await store.add_measurements(rows)
    feed = await store.measurement_feed(0, 100)
    assert [(r.uid, r.observation, r.body) for r in feed] == [
        (rows[0].uid, seen, ""), (rows[1].uid, None, rows[1].body), (rows[2].uid, "[1]", "")]
    # Stored observations stay out of the read API.
    assert all("observation" not in r for r in await store.measurements(Filters()))

    revised = '{"measurement_uid":"revised"}'
    assert await store.replace_analysis(rows[0].uid, revised, "blocked", "tls", "reset",
                                        observation="[1]")
    assert await store.replace_analysis(rows[2].uid, revised, "blocked", "tls", "reset")
    feed = await store.measurement_feed(0, 100)
    assert [(r.observation, r.body) for r in feed] == [
        ("[1]", ""), (None, rows[1].body), (None, revised)]
