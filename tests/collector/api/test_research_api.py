"""The read API in OONI's terms: OONI's parameter and axis names, several values per filter,
category and verdict filters and axes, CSV, one measurement by uid, pseudonymous probe ids."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.api.handlers import csv_cell
from collector.api.openapi import document
from collector.api.pseudonyms import PREFIX
from collector.api.query import PARAMETERS, BadQuery, parse_list
from collector.config import ReadAPI
from tests.collector.factory import measurement
from tests.helpers.collector_app import Running, running

CATEGORIES = (("https://kloop.kg/", "NEWS"), ("https://vlast.kz/", "NEWS"),
              ("https://bureau.kz/", "HUMR"))


def _analysis(verdict: str) -> dict[str, Any]:
    return {"analysis": {"verdict": verdict, "layer": None, "mechanism": None}}


def _corpus() -> list[dict[str, Any]]:
    return [
        measurement(ago=timedelta(hours=3), test_keys=_analysis("ok")),
        measurement(ago=timedelta(hours=2), test_keys=_analysis("blocked")),
        measurement(ago=timedelta(hours=1), probe_cc="KZ", probe_asn="AS9198",
                    input="https://vlast.kz/", test_keys=_analysis("blocked")),
        measurement(ago=timedelta(minutes=50), probe_cc="KZ", probe_asn="AS48716",
                    input="https://bureau.kz/", test_keys=_analysis("throttled")),
        measurement(ago=timedelta(minutes=40), probe_cc="KZ", probe_asn="AS48716",
                    input="https://unlisted.example/", test_keys=_analysis("ok")),
    ]


async def _submit(c: Running, items: list[dict[str, Any]], probe_id: str = "vol-a") -> None:
    response = await c.client.post("/api/v1/measurements", json={"measurements": items},
                                   headers=await c.token(probe_id))
    assert response.status == 200, await response.text()


async def _json(c: Running, url: str, **headers: str) -> Any:
    response = await c.client.get(url, headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def test_ooni_names_and_several_values(database: str) -> None:
    async with running(database, target_categories=CATEGORIES) as c:
        corpus = _corpus()
        await _submit(c, corpus)
        uid = [m["measurement_uid"] for m in corpus]

        async def uids(query: str) -> list[str]:
            page = await _json(c, f"/api/v1/measurements?{query}")
            return [r["uid"] for r in page["measurements"]]

        assert await uids("probe_cc=KZ") == [uid[4], uid[3], uid[2]]
        assert await uids("probe_asn=AS9198,48716") == [uid[4], uid[3], uid[2]]
        assert await uids("probe_cc=KG,KZ&verdict=blocked,throttled") == [uid[3], uid[2],
                                                                          uid[1]]
        assert await uids("domain=kloop.kg,bureau.kz") == [uid[3], uid[1], uid[0]]
        assert await uids("category_code=NEWS&probe_cc=KZ") == [uid[2]]
        assert await uids("category_code=HUMR,NEWS&verdict=ok") == [uid[0]]
        assert await uids("category_code=POLR") == []  # a code no listed input has
        day = corpus[0]["measurement_start_time"][:10]
        assert set(await uids(f"measurement_start_day={day}")) <= set(uid)
        assert uid[0] in await uids(f"measurement_start_day={day}")


async def test_aggregation_axes_in_ooni_names_category_and_verdict(database: str) -> None:
    async with running(database, target_categories=CATEGORIES) as c:
        await _submit(c, _corpus())
        by_cc = await _json(c, "/api/v1/aggregation?axis_x=probe_cc&axis_y=verdict")
        assert [(r["probe_cc"], r["verdict"], r["measurement_count"])
                for r in by_cc["result"]] == [("KG", "blocked", 1), ("KG", "ok", 1),
                                              ("KZ", "blocked", 1), ("KZ", "ok", 1),
                                              ("KZ", "throttled", 1)]
        assert "cc" not in by_cc["result"][0]
        by_category = await _json(c, "/api/v1/aggregation?axis_x=category_code")
        assert [(r["category_code"], r["measurement_count"], r["blocked_count"],
                 r["throttled_count"]) for r in by_category["result"]] == [
            ("HUMR", 1, 0, 1), ("NEWS", 3, 2, 0), (None, 1, 0, 0)]
        by_day = await _json(c, "/api/v1/aggregation?axis_x=measurement_start_day"
                                "&category_code=NEWS")
        assert sum(r["measurement_count"] for r in by_day["result"]) == 3
        assert all(len(r["measurement_start_day"]) == 10 for r in by_day["result"])


async def test_csv_for_list_and_aggregation(database: str) -> None:
    async with running(database) as c:
        corpus = _corpus()
        await _submit(c, corpus)
        response = await c.client.get("/api/v1/measurements?format=CSV&limit=2")
        assert response.status == 200
        assert response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert [r["uid"] for r in rows] == [corpus[4]["measurement_uid"],
                                            corpus[3]["measurement_uid"]]
        assert rows[0]["probe_cc"] == "KZ" and rows[0]["verdict"] == "ok"
        assert rows[0]["layer"] == ""  # null is an empty cell
        cursor = response.headers["X-Next-Cursor"]
        following = await c.client.get(f"/api/v1/measurements?format=csv&cursor={cursor}")
        assert len(list(csv.DictReader(io.StringIO(await following.text())))) == 3
        response = await c.client.get("/api/v1/aggregation?axis_x=probe_cc&format=CSV")
        text = await response.text()
        assert text.splitlines()[0] == ("probe_cc,measurement_count,ok_count,blocked_count,"
                                        "down_count,throttled_count,inconclusive_count")
        assert text.splitlines()[1:] == ["KG,2,1,1,0,0,0", "KZ,3,1,1,0,1,0"]


async def test_one_measurement_by_uid(database: str) -> None:
    async with running(database) as c:
        corpus = _corpus()
        await _submit(c, corpus)
        uid = corpus[2]["measurement_uid"]
        document = await _json(c, f"/api/v1/measurement/{uid}")
        assert document["measurement_uid"] == uid
        assert document["input"] == "https://vlast.kz/"
        assert document["test_keys"]["analysis"]["verdict"] == "blocked"
        missing = await c.client.get("/api/v1/measurement/no-such-uid-1234")
        assert missing.status == 404
        assert await missing.json() == {"error": "no measurement with this uid"}
        bad = await c.client.get("/api/v1/measurement/a%20b")
        assert bad.status == 400 and "uid:" in (await bad.json())["error"]


async def test_probe_ids_are_pseudonyms_unless_the_operator_asks(database: str,
                                                                 tmp_path: Path) -> None:
    token_file = tmp_path / "operator-token"
    token_file.write_text("operator-secret-1\n")
    async with running(database,
                       read_api=ReadAPI(operator_token_file=str(token_file))) as c:
        await _submit(c, _corpus()[:2], probe_id="vol-a")
        await _submit(c, _corpus()[2:3], probe_id="vol-b")
        public = await _json(c, "/api/v1/measurements?full=true")
        ids = [r["probe_id"] for r in public["measurements"]]
        assert all(i.startswith(PREFIX) and len(i) == len(PREFIX) + 16 for i in ids)
        assert "vol-a" not in str(public) and "vol-b" not in str(public)
        # Stable per probe, different between probes.
        assert ids[1] == ids[2] and ids[0] != ids[1]
        assert {r["measurement"]["annotations"]["probe_id"]
                for r in public["measurements"]} == set(ids)
        uid = public["measurements"][0]["uid"]
        single = await _json(c, f"/api/v1/measurement/{uid}")
        assert single["annotations"]["probe_id"] == ids[0]
        wrong = await _json(c, "/api/v1/measurements", Authorization="Bearer guess")
        assert [r["probe_id"] for r in wrong["measurements"]] == ids
        operator = await _json(c, "/api/v1/measurements?full=true",
                               Authorization="Bearer operator-secret-1")
        assert [r["probe_id"] for r in operator["measurements"]] == ["vol-b", "vol-a",
                                                                     "vol-a"]
        assert operator["measurements"][0]["measurement"]["annotations"]["probe_id"] == \
            "vol-b"
        csv_text = await (await c.client.get("/api/v1/measurements?format=CSV")).text()
        assert "vol-a" not in csv_text and ids[0] in csv_text
    # The same database, a new process: the same pseudonyms.
    async with running(database) as c:
        again = await _json(c, "/api/v1/measurements")
        assert [r["probe_id"] for r in again["measurements"]] == ids


def test_the_documented_patterns_are_enforced_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value the OpenAPI document forbids is refused even where the precise checks would
    let it through: the parameter table is the parser's, not only the document's."""
    assert parse_list({"cc": "KZ"}, 100).filters.cc == "KZ"
    monkeypatch.setitem(PARAMETERS, "cc", {**PARAMETERS["cc"], "pattern": "^KG$"})
    with pytest.raises(BadQuery, match="cc: Country"):
        parse_list({"cc": "KZ"}, 100)
    documented = {p["name"]: p["schema"] for p in
                  document()["paths"]["/api/v1/measurements"]["get"]["parameters"]}
    assert documented["cc"]["pattern"] == "^KG$"  # the document says the same


@pytest.mark.parametrize(("value", "cell"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("https://kloop.kg/", "https://kloop.kg/"), (-1, -1), (None, ""), (0.5, 0.5),
])
def test_csv_cells_never_run_as_formulas(value: object, cell: object) -> None:
    assert csv_cell(value) == cell
