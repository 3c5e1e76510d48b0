"""Ingest over real HTTP on loopback, against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiohttp
import pytest

from collector.config import Auth, Limits
from collector.store import Filters
from tests.collector.factory import measurement
from tests.helpers.collector_app import running
from tests.helpers.servers import serve_app

URL = "/api/v1/measurements"


async def test_one_and_a_batch_are_stored_and_a_retry_duplicates_nothing(database: str) -> None:
    async with running(database) as c:
        headers = await c.token()
        single = measurement()
        response = await c.client.post(URL, json=single, headers=headers)
        assert response.status == 200
        assert await response.json() == {"stored": [single["measurement_uid"]],
                                          "duplicates": []}
        batch = [measurement() for _ in range(5)]
        response = await c.client.post(URL, json={"measurements": batch}, headers=headers)
        assert (await response.json())["duplicates"] == []
        # The probe did not hear the answer and sends the batch again, plus one new one.
        retry = [*batch, single, measurement()]
        response = await c.client.post(URL, json={"measurements": retry}, headers=headers)
        assert response.status == 200
        answer = await response.json()
        assert answer["stored"] == [m["measurement_uid"] for m in retry]
        assert answer["duplicates"] == [m["measurement_uid"] for m in retry[:-1]]
        assert await c.store.count_measurements() == 7
        assert c.sample("kuzot_ingest_measurements_total", {"result": "duplicate"}) == 6
        assert c.sample("kuzot_ingest_measurements_total", {"result": "stored"}) == 7


async def test_concurrent_retries_store_each_uid_once(database: str) -> None:
    async with running(database) as c:
        headers = await c.token()
        batch = [measurement() for _ in range(20)]
        responses = await asyncio.gather(*(
            c.client.post(URL, json={"measurements": batch[i:i + 10]}, headers=headers)
            for i in (0, 5, 10, 0, 5, 10)))
        answers = [await r.json() for r in responses]
        assert all(r.status == 200 for r in responses)
        new = [u for a in answers for u in a["stored"] if u not in a["duplicates"]]
        assert sorted(new) == sorted(m["measurement_uid"] for m in batch)
        assert await c.store.count_measurements() == 20


async def test_late_uploads_keep_their_original_time(database: str) -> None:
    async with running(database) as c:
        old = measurement(ago=timedelta(days=3))
        await c.client.post(URL, json=old, headers=await c.token())
        [row] = await c.store.measurements(Filters())
        assert row["start_time"] == old["measurement_start_time"]
        assert row["received_at"] > row["start_time"]


async def test_an_invalid_batch_is_refused_whole_with_every_reason(database: str) -> None:
    async with running(database) as c:
        batch = [measurement(), measurement(probe_cc="kg"), measurement(test_name="nope")]
        response = await c.client.post(URL, json={"measurements": batch},
                                       headers=await c.token())
        assert response.status == 400
        answer = await response.json()
        assert answer["error"] == "measurements[1]: probe_cc: two upper-case letters"
        assert [(r["index"], r["uid"], r["reason"]) for r in answer["rejected"]] == [
            (1, batch[1]["measurement_uid"], "probe_cc"),
            (2, batch[2]["measurement_uid"], "test_name")]
        assert await c.store.count_measurements() == 0
        assert c.sample("kuzot_measurements_rejected_total", {"reason": "probe_cc"}) == 1
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "invalid"}) == 1


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "body is not valid JSON"),
    (b'{"measurements": [{"x": NaN}]}', "NaN is not JSON"),
    (b"[" * 50000 + b"]" * 50000, "nested too deeply"),
    (b'{"measurements": []}', "measurements: non-empty list required"),
])
async def test_malformed_bodies_get_400_with_a_reason(tmp_path: object, body: bytes,
                                                      message: str) -> None:
    async with running(f"{tmp_path}/k.sqlite") as c:
        response = await c.client.post(URL, data=body, headers={
            **await c.token(), "Content-Type": "application/json"})
        assert response.status == 400
        assert message in (await response.json())["error"]


async def test_tokens_401_403_and_revocation(database: str) -> None:
    async with running(database) as c:
        m = measurement()
        response = await c.client.post(URL, json=m)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert await response.json() == {"error": "missing bearer token"}
        response = await c.client.post(URL, json=m, headers={"Authorization": "Bearer nope"})
        assert (response.status, await response.json()) == (403, {"error": "unknown token"})
        headers = await c.token("p9")
        assert (await c.client.post(URL, json=m, headers=headers)).status == 200
        assert await c.store.revoke_token("p9", "2024-05-02 00:00:00")
        response = await c.client.post(URL, json=measurement(), headers=headers)
        assert (response.status, await response.json()) == (403, {"error": "revoked token"})
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "unauthorized"}) == 1
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "forbidden"}) == 2
        [row] = await c.store.measurements(Filters())
        assert row["probe_id"] == "p9"


async def test_without_required_tokens_submissions_are_anonymous(tmp_path: object) -> None:
    async with running(f"{tmp_path}/k.sqlite", auth=Auth(require_token=False)) as c:
        assert (await c.client.post(URL, json=measurement())).status == 200
        [row] = await c.store.measurements(Filters())
        assert row["probe_id"] == "anonymous"


async def test_bodies_over_the_limit_get_413_declared_or_streamed(tmp_path: object) -> None:
    async with running(f"{tmp_path}/k.sqlite", limits=Limits(max_body_bytes=20000)) as c:
        headers = await c.token()
        big = {"measurements": [measurement(test_keys={"x": "y" * 30000})]}
        response = await c.client.post(URL, json=big, headers=headers)
        assert response.status == 413
        assert await response.json() == {"error": "body larger than 20000 bytes"}

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(30):
                yield b" " * 1000  # no Content-Length: the limit applies while reading

        response = await c.client.post(URL, data=chunks(), headers=headers)
        assert response.status == 413
        assert (await c.client.post(URL, json=measurement(), headers=headers)).status == 200
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "too_large"}) == 2


async def test_a_probe_over_its_rate_gets_429_and_others_do_not(tmp_path: object) -> None:
    async with running(f"{tmp_path}/k.sqlite", limits=Limits(rate_per_minute=10)) as c:
        greedy, polite = await c.token("greedy"), await c.token("polite")
        batch = {"measurements": [measurement() for _ in range(8)]}
        assert (await c.client.post(URL, json=batch, headers=greedy)).status == 200
        response = await c.client.post(URL, json={"measurements": [measurement(),
                                                                    measurement(),
                                                                    measurement()]},
                                       headers=greedy)
        assert response.status == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 6
        assert await response.json() == {"error": "rate limit exceeded for this probe"}
        assert (await c.client.post(URL, json=measurement(), headers=polite)).status == 200
        assert await c.store.count_measurements() == 9
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "rate_limited"}) == 1


async def test_the_submitters_address_is_never_stored(tmp_path: object) -> None:
    # The client connects from 127.0.0.2, which is not the collector's own address.
    async with running(f"{tmp_path}/k.sqlite") as c:
        headers = await c.token()
        m = measurement(probe_ip="127.0.0.2", test_keys={
            "network_events": [{"address": "127.0.0.2:51000"}],
            "analysis": {"verdict": "ok"}})
        url = str(c.client.make_url(URL))
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as session, session.post(
                url, json=m, headers=headers) as response:
            assert response.status == 200
        bodies = await c.store.measurement_bodies([m["measurement_uid"]])
        text = bodies[m["measurement_uid"]]
        assert "127.0.0.2" not in text
        stored = json.loads(text)
        assert stored["probe_ip"] == "127.0.0.1"
        assert stored["test_keys"]["network_events"] == [{"address": "[scrubbed]:51000"}]


async def test_behind_a_proxy_the_configured_header_names_the_submitter(
        tmp_path: object) -> None:
    async with running(f"{tmp_path}/k.sqlite", client_address_header="X-Forwarded-For") as c:
        m = measurement(test_keys={"failure": "dial 198.51.100.23:443: connection_reset"})
        response = await c.client.post(URL, json=m, headers={
            **await c.token(), "X-Forwarded-For": "10.9.9.9, 198.51.100.23"})
        assert response.status == 200
        body = (await c.store.measurement_bodies([m["measurement_uid"]]))[m["measurement_uid"]]
        assert json.loads(body)["test_keys"]["failure"] == "dial [scrubbed]:443: connection_reset"


@pytest.mark.postgres
async def test_503_while_the_database_refuses_then_200(postgres_cluster: object) -> None:
    import secrets

    from tests.helpers.postgres import PostgresCluster

    assert isinstance(postgres_cluster, PostgresCluster)
    role, name = f"r_{secrets.token_hex(4)}", f"kuzot_{secrets.token_hex(6)}"
    postgres_cluster.execute(f"CREATE ROLE {role} LOGIN")
    postgres_cluster.execute(f"CREATE DATABASE {name} OWNER {role}")
    dsn = f"postgresql://{role}@127.0.0.1:{postgres_cluster.port}/{name}"
    try:
        async with running(dsn) as c:
            headers = await c.token()
            m = measurement()
            postgres_cluster.execute(f"ALTER ROLE {role} NOLOGIN")
            postgres_cluster.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     f"WHERE usename = '{role}'")
            response = await c.client.post(URL, json=m, headers=headers)
            assert response.status == 503
            assert response.headers["Retry-After"] == "30"
            assert await response.json() == {"error": "storage unavailable, retry later"}
            assert (await c.client.get("/healthz")).status == 503
            metrics = await c.client.get("/metrics")
            assert "kuzot_store_up 0.0" in await metrics.text()
            postgres_cluster.execute(f"ALTER ROLE {role} LOGIN")
            response = await c.client.post(URL, json=m, headers=headers)
            assert (response.status, (await response.json())["duplicates"]) == (200, [])
            assert c.sample("kuzot_ingest_requests_total", {"outcome": "unavailable"}) == 1
    finally:
        postgres_cluster.execute(f"DROP DATABASE {name} WITH (FORCE)")
        postgres_cluster.execute(f"DROP ROLE {role}")


async def test_the_access_log_leaves_the_client_address_out(tmp_path: object) -> None:
    import logging

    from collector.app import create_app
    from collector.cli import ACCESS_LOG_FORMAT
    from collector.config import CollectorConfig

    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("kuzot.test.access")
    logger.setLevel(logging.INFO)
    logger.addHandler(Capture())
    app = create_app(CollectorConfig(database=f"{tmp_path}/k.sqlite"))
    async with serve_app(app, access_log=logger,
                         access_log_format=ACCESS_LOG_FORMAT) as port:
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as session, session.get(
                f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
    assert len(records) == 1 and "GET /healthz" in records[0]
    assert "127.0.0.2" not in records[0]
