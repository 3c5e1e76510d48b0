"""Uploads prepared in worker processes: the same answers, stored bytes and metrics as on a
thread, a killed worker loses nothing, and the workers stop with the collector."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import signal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from collector.api import ingest_workers
from collector.api.prepare import WORKER_NICENESS
from collector.config import Ingest
from collector.keys import ingest_workers_key
from collector.store import StoredMeasurement
from tests.collector.factory import measurement
from tests.helpers.collector_app import Running, running

URL = "/api/v1/measurements"
IN_PROCESS = Ingest(workers=0)
WORKERS = Ingest(workers=1, process_min_bytes=1)  # every body to the workers, however small
SUBMITTER = "203.0.113.7"


def batch(count: int, prefix: str) -> list[dict[str, Any]]:
    """Measurements with what the two serializations, the scrub and the metrics could treat
    differently: a float with an exponent, non-ASCII text, the submitter's address, timings."""
    out = []
    for i in range(count):
        m = measurement(measurement_uid=f"{prefix}-{i:04d}")
        keys = m["test_keys"]
        keys["x_float"] = 1.5e-07 * (i + 1)
        keys["x_text"] = "Бишкек «ошибка» 🙂 \u2028 from 203.0.113.7 and 7.113.0.203.in-addr.arpa"
        keys["requests"] = [{"t0": 0.25, "x_ttfb": 0.5 + i / 1000, "t": 0.75 + i / 100,
                             "failure": None, "request": {"url": m["input"]}}]
        keys["tcp_connect"] = [{"ip": "198.51.100.9", "port": 443, "t0": 0.1, "t": 0.2,
                                "status": {"success": True, "failure": None}}]
        out.append(m)
    return out


async def post(c: Running, body: Any) -> tuple[int, Any]:
    headers = {**await c.token(), "X-Forwarded-For": SUBMITTER}
    response = await c.client.post(URL, json=body, headers=headers)
    return response.status, await response.json()


PREFIXES = ("kuzot_target_measurements", "kuzot_phase_duration_seconds_count",
            "kuzot_ingest_measurements_total", "kuzot_measurements_total",
            "kuzot_measurements_rejected")


PREFIXES = ("kuzot_target_measurements", "kuzot_phase_duration_seconds_count",
            "kuzot_ingest_measurements_total", "kuzot_measurements_total",
            "kuzot_measurements_rejected")


def metric_lines(c: Running) -> list[str]:
    """The fleet's and the ingest's samples (not timings, which differ run to run)."""
    text = generate_latest(c.registry).decode()
    return sorted(line for line in text.splitlines()
                  if "_created" not in line and line.startswith(PREFIXES))


async def test_a_batch_is_answered_stored_and_counted_alike_either_way(tmp_path: Path) -> None:
    docs = batch(60, "alike")
    results = []
    for name, ingest in (("thread", IN_PROCESS), ("process", WORKERS)):
        async with running(str(tmp_path / f"{name}.sqlite"), ingest=ingest,
                           client_address_header="X-Forwarded-For") as c:
            status, answer = await post(c, {"measurements": docs})
            assert status == 200, answer
            assert bool(c.app[ingest_workers_key].worker_pids()) == (name == "process")
            bodies = await c.store.measurement_bodies(answer["stored"])
            results.append((answer, bodies, metric_lines(c)))
    (answer, bodies, lines), (answer2, bodies2, lines2) = results
    assert answer == answer2 == {"stored": [d["measurement_uid"] for d in docs],
                                 "duplicates": []}
    assert bodies == bodies2  # byte for byte
    assert all(SUBMITTER not in b and "[scrubbed]" in b for b in bodies.values())
    assert lines == lines2
    assert any("kuzot_phase_duration_seconds_count" in line for line in lines)


async def test_refusals_and_rejections_are_the_same_either_way(tmp_path: Path) -> None:
    good = batch(3, "mixed")
    bad = [*good[:1], {**good[1], "probe_cc": "kg"}, good[2]]
    bodies: list[Any] = [{"measurements": bad}, {"measurements": []}, [1, 2], "text"]
    raw_bodies = [b"{\"measurements\": [1e999]}", b"\xff\xfe", b"[" * 3000 + b"]" * 3000]
    seen = []
    for name, ingest in (("thread", IN_PROCESS), ("process", WORKERS)):
        async with running(str(tmp_path / f"{name}.sqlite"), ingest=ingest) as c:
            headers = await c.token()
            answers = []
            for body in bodies:
                response = await c.client.post(URL, json=body, headers=headers)
                answers.append((response.status, await response.json()))
            for raw in raw_bodies:
                response = await c.client.post(URL, data=raw, headers=headers)
                answers.append((response.status, await response.json()))
            assert await c.store.count_measurements() == 0
            seen.append((answers, metric_lines(c)))
    assert seen[0] == seen[1]
    assert [status for status, _ in seen[0][0]] == [400] * 7
    assert seen[0][0][0][1]["rejected"][0]["reason"] == "probe_cc"


async def test_a_killed_worker_loses_nothing_and_is_replaced(
        database: str, caplog: pytest.LogCaptureFixture) -> None:
    async with running(database, ingest=WORKERS) as c:
        workers = c.app[ingest_workers_key]
        first = batch(20, "before")
        assert (await post(c, {"measurements": first}))[0] == 200
        [pid] = workers.worker_pids()
        os.kill(pid, signal.SIGKILL)
        second = batch(20, "after")
        with caplog.at_level(logging.WARNING, logger="kuzot.ingest"):
            status, answer = await post(c, {"measurements": second})
        assert status == 200, answer
        assert answer["stored"] == [d["measurement_uid"] for d in second]
        third = batch(20, "later")
        assert (await post(c, {"measurements": third}))[0] == 200
        assert workers.started == 2  # a new pool for the uploads after the death
        assert await c.store.count_measurements() == 60
    assert "ingest worker process died" in caplog.text


async def test_workers_stop_with_the_collector(tmp_path: Path) -> None:
    async with running(str(tmp_path / "stop.sqlite"), ingest=WORKERS) as c:
        assert (await post(c, {"measurements": batch(5, "stop")}))[0] == 200
        pids = c.app[ingest_workers_key].worker_pids()
        assert pids
    for pid in pids:
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"worker {pid} still runs after the collector stopped")


def test_small_bodies_stay_in_the_collectors_process() -> None:
    from collector.api.ingest_workers import IngestWorkers

    workers = IngestWorkers(2, 64 * 1024)
    assert workers.processes == 2 and workers.worker_pids() == []


def test_a_row_crosses_the_process_boundary_whole() -> None:
    # StoredMeasurement pickles by its own __reduce__: a field added to the class and not
    # to it would be lost on the way back from a worker.
    row = StoredMeasurement(
        uid="u" * 20, probe_id="p", test_name="web_connectivity", input="https://x.kg/",
        probe_cc="KG", probe_asn="AS1", start_time="2024-01-01 00:00:00",
        received_at="2024-01-01 00:00:01", verdict="ok", layer="dns", mechanism="nxdomain",
        body="", location_source="geoip", location_mismatch=True, packed=b"\x02zz",
        observation="[1]")
    back = pickle.loads(pickle.dumps(row))
    assert [getattr(back, f.name) for f in dataclasses.fields(back)] == \
        [getattr(row, f.name) for f in dataclasses.fields(row)]


def test_an_outcome_crosses_the_process_boundary_whole() -> None:
    # Outcome too pickles by its own __reduce__ (fields in order).
    from datetime import UTC, datetime

    from collector.metrics.fleet import Outcome

    outcome = Outcome("KG", "AS1", "https://x.kg/", "blocked", "tls", "reset",
                      (("connect", 0.5), ("tls", 1.25)), datetime(2024, 1, 1, 1, tzinfo=UTC))
    back = pickle.loads(pickle.dumps(outcome))
    assert back == outcome
    assert [getattr(back, f.name) for f in dataclasses.fields(back)] == \
        [getattr(outcome, f.name) for f in dataclasses.fields(outcome)]


async def test_without_worker_processes_uploads_are_prepared_on_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # A fake failure, said so: a machine whose fork server cannot start (no /dev/shm for
    # multiprocessing's semaphores, as in some containers) cannot be made here.
    def no_fork_server(method: str) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(ingest_workers.multiprocessing, "get_context", no_fork_server)
    async with running(str(tmp_path / "threads.sqlite"), ingest=WORKERS) as c:
        with caplog.at_level(logging.WARNING, logger="kuzot.ingest"):
            for round_ in range(2):
                status, answer = await post(c, {"measurements": batch(5, f"threads{round_}")})
                assert status == 200, answer
        assert c.app[ingest_workers_key].processes == 0
        assert await c.store.count_measurements() == 10
    assert caplog.text.count("cannot start") == 1


async def test_workers_yield_the_cpu_to_the_collectors_own_process(tmp_path: Path) -> None:
    async with running(str(tmp_path / "nice.sqlite"), ingest=WORKERS) as c:
        assert (await post(c, {"measurements": batch(3, "nice")}))[0] == 200
        [pid] = c.app[ingest_workers_key].worker_pids()
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + WORKER_NICENESS)
