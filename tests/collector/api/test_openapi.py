"""The OpenAPI document against the running application.

The document must be valid OpenAPI 3.1; every route must be documented and every documented
operation must exist; every documented query parameter must be accepted (with its example) and
undocumented ones refused; and every response the tests provoke, for every documented status
except 503, must validate against the documented schema and media type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import ClientResponse
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from collector.api.openapi import document
from collector.api.query import decode_cursor
from collector.config import Control, Limits, TargetListsConfig
from collector.keys import eventbook_key
from collector.vantage.sni_ab import SniAB
from tests.collector.factory import measurement
from tests.helpers.collector_app import Running, running
from tests.helpers.fleet import fleet_events
from tests.helpers.servers import page_app, serve_app, server_context

BASE = "urn:kuzot:openapi"
DOC = document()
REGISTRY: Registry[Any] = Registry().with_resource(
    BASE, Resource(contents=DOC, specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def check(response: ClientResponse, body: Any, path: str, method: str,
          seen: set[tuple[str, str, int]]) -> None:
    """Validate one response against the document; records it as exercised."""
    status = str(response.status)
    responses = DOC["paths"][path][method]["responses"]
    assert status in responses, f"{method.upper()} {path} answered undocumented {status}"
    content = responses[status]["content"]
    media = response.content_type
    assert media in content, f"{method.upper()} {path} {status}: {media} not documented"
    if media == "application/json":
        pointer = _pointer("paths", path, method, "responses", status, "content", media,
                           "schema")
        ref = f"{BASE}#/{pointer}"
        Draft202012Validator({"$ref": ref}, registry=REGISTRY).validate(body)
    seen.add((path, method, response.status))


@pytest.fixture
async def collector(tmp_path: Path, ca: trustme.CA, ca_file: str) -> AsyncIterator[Running]:
    control = dataclasses.replace(Control(), allow_private_addresses=True, ca_file=ca_file)
    async with running(f"{tmp_path}/k.sqlite", control=control,
                       limits=Limits(max_body_bytes=50000, rate_per_minute=20)) as c:
        yield c


def test_the_document_is_valid_openapi_31() -> None:
    validate_spec(DOC)  # type: ignore[arg-type]
    assert DOC["openapi"] == "3.1.0"
    cursor = next(p for p in DOC["paths"]["/api/v1/measurements"]["get"]["parameters"]
                  if p["name"] == "cursor")
    assert decode_cursor(cursor["example"])


async def test_routes_and_document_agree(collector: Running) -> None:
    routes = {(r.resource.canonical, r.method.lower())  # type: ignore[union-attr]
              for r in collector.app.router.routes() if r.method != "HEAD"}
    documented = {(p, m) for p, ops in DOC["paths"].items() for m in ops}
    assert routes == documented
    response = await collector.client.get("/api/v1/openapi.json")
    assert await response.json() == DOC


async def test_documented_parameters_are_accepted_and_others_refused(
        collector: Running) -> None:
    seen: set[tuple[str, str, int]] = set()
    for path in ("/api/v1/measurements", "/api/v1/aggregation", "/api/v1/events", "/",
                 "/events.atom"):
        for parameter in DOC["paths"][path]["get"]["parameters"]:
            query = {parameter["name"]: parameter["example"]}
            if parameter["name"] == "axis_y":
                query["axis_x"] = "day"
            response = await collector.client.get(path, params=query)
            body = await (response.json() if response.content_type == "application/json"
                          else response.text())
            check(response, body, path, "get", seen)
            assert response.status == 200, (path, query, body)
    for path in ("/api/v1/measurements", "/api/v1/aggregation", "/", "/events.atom"):
        response = await collector.client.get(path, params={"probe_ip": "1.2.3.4"})
        check(response, await response.json(), path, "get", seen)
        assert response.status == 400


async def test_every_response_matches_its_schema(collector: Running, ca: trustme.CA,
                                                 tmp_path: Path) -> None:
    seen: set[tuple[str, str, int]] = set()
    c = collector.client
    headers = await collector.token("p1")
    await collector.token("gone")
    revoked = await collector.token("gone")
    await collector.store.revoke_token("gone", "2024-05-02 00:00:00")

    async def call(method: str, path: str, path_value: str | None = None,
                   **kwargs: Any) -> Any:
        url = path.replace("{event_id}", path_value).replace("{uid}", path_value) \
            if path_value else path
        response = await c.request(method.upper(), url, **kwargs)
        body = await (response.json() if response.content_type == "application/json"
                      else response.text())
        check(response, body, path, method, seen)
        return body

    measurements = "/api/v1/measurements"
    batch = [measurement(), measurement(probe_cc="KZ", input="https://vlast.kz/")]
    await call("post", measurements, json={"measurements": batch}, headers=headers)
    await call("post", measurements, json=measurement(probe_asn="8449"), headers=headers)
    await call("post", measurements, json=measurement())
    await call("post", measurements, json=measurement(), headers=revoked)
    await call("post", measurements, json={"measurements": [measurement(
        test_keys={"x": "y" * 60000})]}, headers=headers)
    for _ in range(4):
        await call("post", measurements, headers=headers,
                   json={"measurements": [measurement() for _ in range(6)]})
    page = await call("get", measurements, params={"full": "true", "limit": "1"})
    assert page["next_cursor"] and "measurement" in page["measurements"][0]
    await call("get", measurements, params={"cc": "Kyrgyzstan"})
    await call("get", measurements, params={"format": "CSV", "probe_cc": "KG,KZ"})
    one = "/api/v1/measurement/{uid}"
    await call("get", one, path_value=batch[0]["measurement_uid"])
    await call("get", one, path_value="no-such-measurement")
    await call("get", one, path_value="bad uid")
    await call("get", "/api/v1/aggregation", params={"axis_x": "category_code",
                                                     "format": "CSV"})
    await call("get", "/api/v1/aggregation", params={"axis_x": "cc", "axis_y": "domain"})
    await call("get", "/api/v1/aggregation", params={"axis_x": "nope"})
    heartbeat = "/api/v1/heartbeat"
    await call("post", heartbeat, json={"sent_at": "2024-05-01T12:00:00Z", "queue_depth": 1},
               headers=headers)
    await call("post", heartbeat, json={"sent_at": "soon"}, headers=headers)
    await call("post", heartbeat, json={"sent_at": "2024-05-01T12:00:00Z"})
    await call("post", heartbeat, json={"sent_at": "2024-05-01T12:00:00Z"}, headers=revoked)
    await call("post", heartbeat, json={"pad": "x" * 20000}, headers=headers)
    async with serve_app(page_app(), server_context(ca, "localhost")) as port:
        view = await call("post", "/api/v1/control",
                          json={"http_request": f"https://localhost:{port}/"})
        assert view["http_request"]["status_code"] == 200
    await call("post", "/api/v1/control", json={"http_request": "ftp://x/"})
    await call("get", "/api/v1/events")
    await call("get", "/api/v1/events", params={"kind": "outage"})
    await call("get", "/api/v1/openapi.json")
    await call("get", "/api/v1/sni-ab")  # off unless configured
    async with running(f"{tmp_path}/ab.sqlite", sni_ab=SniAB(listen="127.0.0.1:0")) as ab:
        response = await ab.client.get("/api/v1/sni-ab")
        check(response, await response.json(), "/api/v1/sni-ab", "get", seen)
    targets = "/api/v1/targets"
    kg = {"probe_cc": "KG"}
    await call("get", targets, params=kg, headers=headers)  # none served unless configured
    await call("get", targets, params=kg)
    await call("get", targets, params=kg, headers=revoked)
    await call("get", targets, params={"probe_cc": "kg"}, headers=headers)
    for health in ("/api/v1/targets/health", "/targets/health"):
        await call("get", health, headers=headers)  # none served unless configured
        await call("get", health)
        await call("get", health, headers=revoked)
    lists = tmp_path / "lists"
    (lists / "curated").mkdir(parents=True)
    (lists / "kg.csv").write_text("url,category,cc\nhttps://kloop.kg/,NEWS,KG\n")
    (lists / "curated" / "global.csv").write_text(
        "url,category,cc,interval\nhttps://www.torproject.org/,ANON,*,24h\n")
    async with running(f"{tmp_path}/tl.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as served:
        token = await served.token("p2")
        response = await served.client.get(targets, params=kg, headers=token)
        check(response, await response.json(), targets, "get", seen)
        assert response.status == 200
        again = await served.client.get(targets, params=kg, headers={
            **token, "If-None-Match": response.headers["ETag"]})
        assert again.status == 304 and await again.read() == b""
        seen.add((targets, "get", 304))  # no body, so no schema to check
        for health in ("/api/v1/targets/health", "/targets/health"):
            for query, status in (({"probe_cc": "KG"}, 200), ({"days": "-1"}, 400)):
                response = await served.client.get(health, params=query, headers=token)
                body = await (response.json() if response.content_type == "application/json"
                              else response.text())
                check(response, body, health, "get", seen)
                assert response.status == status
    await call("get", "/metrics")
    await call("get", "/healthz")
    await call("get", "/")
    await call("get", "/", params={"lang": "fr"})
    await call("get", "/events.atom", params={"cc": "KG", "lang": "ru"})
    await call("get", "/events.atom", params={"cc": "Kyrgyzstan"})
    await collector.app[eventbook_key].publish(fleet_events(datetime.now(UTC)))
    await call("get", "/events/{event_id}", path_value="ev-kz-block")
    await call("get", "/events/{event_id}", path_value="no-such-event")
    await call("get", "/events/{event_id}", path_value="ev-kz-block", params={"x": "1"})
    documented = {(p, m, int(s)) for p, ops in DOC["paths"].items() for m, op in ops.items()
                  for s in op["responses"] if s != "503"}
    assert documented - seen == set()


def test_the_schema_describes_what_the_probe_sends() -> None:
    schema = Draft202012Validator({"$ref": f"{BASE}#/components/schemas/Measurement"},
                                  registry=REGISTRY)
    schema.validate(measurement())
    assert not schema.is_valid(measurement(probe_cc="kg"))
    assert not schema.is_valid(measurement(test_keys={"analysis": {"verdict": "censored"}}))
