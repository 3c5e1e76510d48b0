"""The read API over HTTP: filters, cursor pagination, aggregation, and 400s for bad queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.api.query import BadQuery, decode_cursor, encode_cursor, parse_time
from collector.config import Query
from tests.collector.factory import measurement
from tests.helpers.collector_app import Running, running


async def _submit(c: Running, items: list[dict[str, Any]]) -> None:
    response = await c.client.post("/api/v1/measurements", json={"measurements": items},
                                   headers=await c.token())
    assert response.status == 200, await response.text()


def _corpus() -> list[dict[str, Any]]:
    def analysis(verdict: str, mechanism: str | None = None) -> dict[str, Any]:
        return {"analysis": {"verdict": verdict, "layer": "tls" if mechanism else None,
                             "mechanism": mechanism}}

    return [
        measurement(ago=timedelta(hours=30), test_keys=analysis("ok")),
        measurement(ago=timedelta(hours=26), test_keys=analysis("blocked", "reset")),
        measurement(ago=timedelta(hours=2), test_keys=analysis("blocked", "reset")),
        measurement(ago=timedelta(hours=1), probe_cc="KZ", probe_asn="AS9198",
                    input="https://vlast.kz/", test_keys=analysis("throttled")),
        measurement(ago=timedelta(minutes=30), probe_cc="KZ", probe_asn="AS9198",
                    input=None, test_name="telegram", test_keys=analysis("down")),
    ]


async def test_list_filters_and_full_documents(database: str) -> None:
    async with running(database) as c:
        corpus = _corpus()
        await _submit(c, corpus)

        async def uids(query: str) -> list[str]:
            response = await c.client.get(f"/api/v1/measurements?{query}")
            assert response.status == 200, await response.text()
            return [r["uid"] for r in (await response.json())["measurements"]]

        uid = [m["measurement_uid"] for m in corpus]
        assert await uids("") == uid[::-1]
        assert await uids("cc=kz") == [uid[4], uid[3]]
        assert await uids("asn=8449&verdict=blocked") == [uid[2], uid[1]]
        assert await uids("domain=KLOOP.KG") == [uid[2], uid[1], uid[0]]
        assert await uids("input=https://vlast.kz/") == [uid[3]]
        assert await uids("test_name=telegram") == [uid[4]]
        since = corpus[2]["measurement_start_time"].replace(" ", "T") + "Z"
        assert await uids(f"since={since}") == [uid[4], uid[3], uid[2]]
        until = corpus[1]["measurement_start_time"]
        assert await uids(f"until={until}") == [uid[0]]
        response = await c.client.get("/api/v1/measurements?verdict=down&full=true")
        [row] = (await response.json())["measurements"]
        assert row["measurement"]["measurement_uid"] == uid[4]
        assert row["measurement"]["probe_ip"] == "127.0.0.1"


async def test_cursor_pages_walk_everything_once(database: str) -> None:
    async with running(database) as c:
        corpus = [measurement(ago=timedelta(minutes=i // 3)) for i in range(23)]
        await _submit(c, corpus)
        seen: list[str] = []
        url: str | None = "/api/v1/measurements?limit=5&cc=KG"
        pages = 0
        while url:
            response = await c.client.get(url)
            page = await response.json()
            seen += [r["uid"] for r in page["measurements"]]
            cursor = page["next_cursor"]
            url = f"/api/v1/measurements?limit=5&cc=KG&cursor={cursor}" if cursor else None
            pages += 1
            # Rows arriving while a client pages do not shift the pages still to come.
            if pages == 2:
                await _submit(c, [measurement(ago=timedelta(seconds=1))])
        assert pages == 5
        assert sorted(seen) == sorted(m["measurement_uid"] for m in corpus)
        assert len(seen) == len(set(seen))


async def test_aggregation_like_oonis(database: str) -> None:
    async with running(database) as c:
        await _submit(c, _corpus())

        async def aggregate(query: str) -> dict[str, Any]:
            response = await c.client.get(f"/api/v1/aggregation?{query}")
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            return answer

        totals = await aggregate("")
        assert totals == {"dimension_count": 0, "result": [{
            "measurement_count": 5, "ok_count": 1, "blocked_count": 2, "down_count": 1,
            "throttled_count": 1, "inconclusive_count": 0}]}
        by_network = await aggregate("axis_x=cc&axis_y=asn")
        assert by_network["dimension_count"] == 2
        assert [(r["cc"], r["asn"], r["measurement_count"], r["blocked_count"])
                for r in by_network["result"]] == [("KG", "AS8449", 3, 2), ("KZ", "AS9198", 2, 0)]
        by_domain = await aggregate("axis_x=domain&cc=KG")
        assert [(r["domain"], r["blocked_count"]) for r in by_domain["result"]] == [
            ("kloop.kg", 2)]
        by_day = await aggregate("axis_x=day&test_name=web_connectivity")
        assert sum(r["measurement_count"] for r in by_day["result"]) == 4
        assert all(len(r["day"]) == 10 for r in by_day["result"])
        by_hour = await aggregate("axis_x=hour")
        assert [r["hour"][-6:] for r in by_hour["result"]] == [":00:00"] * len(
            by_hour["result"])


async def test_aggregation_over_partial_days_counts_every_measurement(database: str) -> None:
    """A range starting and ending inside days (whole days from the daily rollups, the edge
    hours from the hourly ones) answers as counting the measurements submitted."""
    inputs = ["https://kloop.kg/", "https://vlast.kz/", None]
    verdicts = ["ok", "blocked", "down", None]
    corpus = [measurement(ago=timedelta(minutes=97 * i), verdict=verdicts[i % 4],
                          input=inputs[i % 3], probe_cc="KG" if i % 2 else "KZ",
                          probe_asn="AS8449" if i % 2 else "AS9198")
              for i in range(40)]
    async with running(database) as c:
        await _submit(c, corpus)
        now = datetime.now(UTC)
        since = (now - timedelta(hours=50)).strftime("%Y-%m-%d %H:00:00")
        until = (now - timedelta(hours=4)).strftime("%Y-%m-%d %H:00:00")
        kept = [m for m in corpus if since <= m["measurement_start_time"] < until]
        assert 0 < len(kept) < len(corpus)
        window = f"since={since.replace(' ', 'T')}Z&until={until.replace(' ', 'T')}Z"
        for axes, key in (
                ("axis_x=day", lambda m: (m["measurement_start_time"][:10],)),
                ("axis_x=input&axis_y=cc", lambda m: (m["input"], m["probe_cc"])),
                ("axis_x=asn", lambda m: (m["probe_asn"],))):
            response = await c.client.get(f"/api/v1/aggregation?{axes}&{window}")
            assert response.status == 200, await response.text()
            names = [part.split("=")[1] for part in axes.split("&")]
            got = {tuple(r[n] for n in names): (r["measurement_count"], r["blocked_count"])
                   for r in (await response.json())["result"]}
            want: dict[tuple[Any, ...], tuple[int, int]] = {}
            for m in kept:
                total, blocked = want.get(key(m), (0, 0))
                is_blocked = m["test_keys"].get("analysis", {}).get("verdict") == "blocked"
                want[key(m)] = (total + 1, blocked + is_blocked)
            assert got == want, axes


async def test_too_many_groups_is_a_clear_400(tmp_path: Path) -> None:
    async with running(f"{tmp_path}/k.sqlite", query=Query(max_groups=2)) as c:
        await _submit(c, [measurement(input=f"https://site{i}.kg/") for i in range(3)])
        response = await c.client.get("/api/v1/aggregation?axis_x=input")
        assert response.status == 400
        assert await response.json() == {
            "error": "more than 2 groups: narrow the filters or use fewer axes"}
        assert (await c.client.get("/api/v1/aggregation?axis_x=cc")).status == 200


BAD_QUERIES = [
    ("/api/v1/measurements?country=KG", "country: unknown parameter"),
    ("/api/v1/measurements?cc=KG&cc=KZ", "cc: given more than once"),
    ("/api/v1/measurements?cc=KGZ", "cc: two letters"),
    ("/api/v1/measurements?asn=ASX", "asn: AS number"),
    ("/api/v1/measurements?since=yesterday", "since: expected a date or time"),
    ("/api/v1/measurements?since=2024-05-02&until=2024-05-01", "until: must be after since"),
    ("/api/v1/measurements?verdict=censored", "verdict: one of"),
    ("/api/v1/measurements?limit=0", "limit: an integer from 1 to 1000"),
    ("/api/v1/measurements?limit=1001", "limit: an integer from 1 to 1000"),
    ("/api/v1/measurements?cursor=bm90IGEgY3Vyc29y", "cursor: not a cursor"),
    ("/api/v1/measurements?full=yes", "full: true or false"),
    ("/api/v1/measurements?test_name=Web%20Connectivity", "test_name: 2-30 characters"),
    ("/api/v1/measurements?domain=kloop.kg/x", "domain: a host name"),
    ("/api/v1/aggregation?axis_x=probe_ip", "axis_x: one of day, hour, cc, asn"),
    ("/api/v1/aggregation?axis_y=cc", "axis_y: needs axis_x"),
    ("/api/v1/aggregation?axis_x=cc&axis_y=cc", "axis_y: same axis"),
    ("/api/v1/aggregation?verdict=ok,censored", "verdict: one of"),
    ("/api/v1/aggregation?probe_cc=KG&cc=KZ", "probe_cc: same filter as cc"),
    ("/api/v1/measurements?probe_cc=KG,KGZ", "cc: two letters"),
    ("/api/v1/measurements?format=XML", "format: JSON or CSV"),
    ("/api/v1/aggregation?measurement_start_day=2024-05-01&since=2024-05-01",
     "measurement_start_day: not together with since"),
    ("/api/v1/aggregation?measurement_start_day=May", "measurement_start_day: a date"),
    ("/api/v1/measurements?category_code=news", "category_code: Citizen Lab codes"),
    ("/api/v1/measurements?cc=" + ",".join(["KG"] * 51), "cc: at most 50 values"),
    ("/api/v1/events?cc=KG,KZ", "cc: one value"),
]


@pytest.mark.parametrize(("url", "message"), BAD_QUERIES, ids=[u for u, _ in BAD_QUERIES])
async def test_bad_queries_are_refused_with_the_key(tmp_path: Path, url: str,
                                                    message: str) -> None:
    async with running(f"{tmp_path}/k.sqlite") as c:
        response = await c.client.get(url)
        assert response.status == 400
        assert message in (await response.json())["error"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01", "2024-05-01 00:00:00"),
    ("2024-05-01 12:30:00", "2024-05-01 12:30:00"),
    ("2024-05-01T12:30:00Z", "2024-05-01 12:30:00"),
    ("2024-05-01T18:30:00+06:00", "2024-05-01 12:30:00"),
    ("2024-05-01T18:30:00 06:00", "2024-05-01 12:30:00"),  # "+" decoded as a space
])
def test_times_are_normalised_to_utc(text: str, expected: str) -> None:
    assert parse_time(text, "since") == expected


def test_cursors_round_trip_and_reject_tampering() -> None:
    token = encode_cursor("2024-05-01 12:00:00", "uid-1")
    assert decode_cursor(token) == ("2024-05-01 12:00:00", "uid-1")
    for bad in ("", "!!!", encode_cursor("yesterday", "u"), "WzEsMl0"):
        with pytest.raises(BadQuery):
            decode_cursor(bad)
