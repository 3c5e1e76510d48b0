"""List health: listed sites that die are flagged from the control's own fetches, on the API
and the page, kept across a restart; the record itself (``collector.list_health``) on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.api.list_health import STATE_NAME, ListHealth, fetch_failure
from collector.config import Control, TargetListsConfig
from tests.helpers.collector_app import Running, running
from tests.helpers.ports import free_port
from tests.helpers.servers import page_app, serve_app

PARKED = "<html><head><title>This domain is for sale!</title></head><body>$</body></html>"
ONE_SECOND = 1 / 86400  # in days


@pytest.mark.parametrize("page, expected", [
    ({"failure": None, "status_code": 200, "title": "Kloop"}, None),
    ({"failure": "connection_refused", "status_code": None, "title": ""}, "connection_refused"),
    ({"failure": "dns_nxdomain_error"}, "dns_nxdomain_error"),
    ({"failure": None, "status_code": 404, "title": "Not found"}, "http_status_404"),
    ({"failure": None, "status_code": 301, "title": ""}, None),  # a redirect kept as final
    ({"failure": None, "status_code": 200, "title": "Buy this domain - Sedo"}, "parked_domain"),
])
def test_what_counts_as_a_failed_fetch(page: dict[str, Any], expected: str | None) -> None:
    assert fetch_failure({"http_request": page}) == expected


def test_a_garbled_control_view_is_a_failure_not_a_crash() -> None:
    assert fetch_failure({}) is not None


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_failures_over_n_days_flag_an_entry_and_one_success_clears_it() -> None:
    health = ListHealth()
    health.record("https://gone.kg/", day(0), None)
    health.record("https://gone.kg/", day(1), "connection_refused")
    assert health.status("https://gone.kg/", 7) == "failing"
    for n in range(2, 8):
        health.record("https://gone.kg/", day(n), "dns_nxdomain_error")
    assert health.status("https://gone.kg/", 7) == "failing"  # six days of failures
    health.record("https://gone.kg/", day(8), "dns_nxdomain_error")
    assert health.status("https://gone.kg/", 7) == "flagged"
    [row] = health.report([("https://gone.kg/", "KG", "NEWS")], 7)
    assert row["failing_since"] == "2026-03-02T12:00:00Z"
    assert row["last_ok"] == "2026-03-01T12:00:00Z"
    assert (row["failures"], row["failing_days"]) == (8, 7.0)
    assert row["last_failure"] == "dns_nxdomain_error"
    health.record("https://gone.kg/", day(9), None)
    assert health.status("https://gone.kg/", 7) == "ok"
    assert health.status("https://never.kg/", 7) == "unchecked"


def test_one_old_failure_is_not_days_of_failures() -> None:
    health = ListHealth()
    health.record("https://once.kg/", day(0), "generic_timeout_error")
    assert health.status("https://once.kg/", 0.5) == "failing"


def test_a_late_answer_does_not_rewrite_history() -> None:
    health = ListHealth()
    health.record("https://x.kg/", day(5), None)
    health.record("https://x.kg/", day(3), "connection_reset")  # older than the success
    assert health.status("https://x.kg/", 1) == "ok"


def test_two_collectors_views_merge() -> None:
    mine, theirs = ListHealth(), ListHealth()
    mine.record("https://a.kg/", day(0), "connection_refused")
    theirs.record("https://a.kg/", day(3), "connection_refused")
    theirs.record("https://b.kg/", day(1), None)
    mine.record("https://c.kg/", day(0), "connection_refused")
    theirs.record("https://c.kg/", day(2), None)  # their success ends my streak
    mine.merge(theirs)
    assert mine.status("https://a.kg/", 3) == "flagged"
    assert mine.status("https://b.kg/", 3) == "ok"
    assert mine.status("https://c.kg/", 1) == "ok"


@pytest.mark.parametrize("document", [
    None, [], {"version": 99, "entries": {}}, {"version": 1, "entries": []},
    {"version": 1, "entries": {"https://a.kg/": {"failures": "many"}}},
    {"version": 1, "entries": {"https://a.kg/": {"evil": 1}}},
])
def test_a_foreign_document_starts_empty(document: object) -> None:
    assert ListHealth.from_document(document).entries == {}


def test_the_document_round_trips() -> None:
    health = ListHealth()
    health.record("https://a.kg/", day(0), "connection_refused")
    health.record("https://a.kg/", day(2), "connection_refused")
    again = ListHealth.from_document(json.loads(json.dumps(health.to_document())))
    assert again.entries == health.entries


def write_lists(directory: Path, urls: list[str]) -> None:
    (directory / "curated").mkdir(parents=True)
    (directory / "kg.csv").write_text(
        "url,category,cc,interval\n" + "".join(f"{u},NEWS,KG,24h\n" for u in urls))
    (directory / "curated" / "global.csv").write_text("url,category,cc\n")


async def control(c: Running, url: str) -> dict[str, Any]:
    response = await c.client.post("/api/v1/control", json={"http_request": url})
    assert response.status == 200
    view: dict[str, Any] = await response.json()
    return view


async def report(c: Running, headers: dict[str, str], **query: str) -> dict[str, Any]:
    response = await c.client.get("/api/v1/targets/health", params=query, headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_listed_sites_that_die_are_flagged_on_the_api_and_the_page(
        tmp_path: Path) -> None:
    lists = tmp_path / "targets"
    database = f"{tmp_path}/k.sqlite"
    unlisted = f"http://127.0.0.1:{free_port()}/"
    async with serve_app(page_app()) as alive, serve_app(page_app(PARKED)) as parked:
        dying_port = free_port()
        live_url = f"http://127.0.0.1:{alive}/"
        dying_url = f"http://127.0.0.1:{dying_port}/news"
        parked_url = f"http://127.0.0.1:{parked}/"
        write_lists(lists, [live_url, dying_url, parked_url])
        settings: dict[str, Any] = {
            "target_lists": TargetListsConfig(directory=str(lists)),
            "control": dataclasses.replace(Control(), allow_private_addresses=True,
                                           timeout=5.0)}
        async with running(database, **settings) as c:
            headers = await c.token("operator")
            async with serve_app(page_app(), port=dying_port):
                assert (await control(c, dying_url))["http_request"]["status_code"] == 200
            await control(c, live_url)
            gone = await control(c, dying_url)  # the site died
            assert gone["http_request"]["failure"] == "connection_refused"
            await control(c, parked_url)
            await control(c, unlisted)
            await asyncio.sleep(1.1)
            await control(c, dying_url)

            week = await report(c, headers)
            assert week["days"] == 7.0
            status = {row["url"]: row["status"] for row in week["entries"]}
            assert status == {live_url: "ok", dying_url: "failing", parked_url: "failing"}
            assert week["counts"] == {"flagged": 0, "failing": 2, "unchecked": 0, "ok": 1}

            second = await report(c, headers, days=str(ONE_SECOND))
            first = second["entries"][0]
            assert (first["url"], first["status"]) == (dying_url, "flagged")
            assert first["last_failure"] == "connection_refused" and first["failures"] == 2
            assert first["last_ok"] is not None
            parked_row = next(r for r in second["entries"] if r["url"] == parked_url)
            # One parked answer is not failures over a second.
            assert (parked_row["status"], parked_row["last_failure"]) == (
                "failing", "parked_domain")
            flagged = await report(c, headers, days=str(ONE_SECOND), status="flagged")
            assert [r["url"] for r in flagged["entries"]] == [dying_url]
            assert (await report(c, headers, probe_cc="KZ"))["entries"] == []

            page = await c.client.get("/targets/health", params={"days": str(ONE_SECOND)},
                                      headers=headers)
            text = await page.text()
            assert page.status == 200 and page.content_type == "text/html"
            assert dying_url in text and "flagged" in text and "connection_refused" in text

            for query, expected in [({}, 401), ({"days": "0"}, 400), ({"days": "x"}, 400),
                                    ({"probe_cc": "kg"}, 400), ({"status": "dead"}, 400)]:
                sent = {} if expected == 401 else headers
                response = await c.client.get("/api/v1/targets/health", params=query,
                                              headers=sent)
                assert response.status == expected, query
            assert (await c.client.get("/targets/health")).status == 401

        # Stopped: the health is in the database, without the unlisted URL; a new
        # collector on the same database still flags the dead site, and a revived site is
        # cleared by one good fetch.
        async with running(database, **settings) as c:
            saved = json.loads(await c.store.load_state(STATE_NAME) or "{}")
            assert set(saved["entries"]) == {live_url, dying_url, parked_url}
            headers = await c.token("operator")
            again = await report(c, headers, days=str(ONE_SECOND), status="flagged")
            assert [r["url"] for r in again["entries"]] == [dying_url]
            async with serve_app(page_app(), port=dying_port):
                await control(c, dying_url)
            revived = await report(c, headers, days=str(ONE_SECOND))
            assert {r["url"]: r["status"] for r in revived["entries"]}[dying_url] == "ok"


async def test_without_served_lists_there_is_no_health(tmp_path: Path) -> None:
    async with running(f"{tmp_path}/k.sqlite") as c:
        headers = await c.token("operator")
        response = await c.client.get("/api/v1/targets/health", headers=headers)
        assert response.status == 404
        assert "target_lists.directory" in (await response.json())["error"]
