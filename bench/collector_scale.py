"""The collector at months of data: bytes on disk, ingest, read latencies, /metrics, memory.

Run: ``python bench/collector_scale.py [--sizes 100000 1000000] [--postgres | --dsn DSN]
[--seconds 10] [--keep DIR]``

Measurements are realistic in size and shape: one web_connectivity measurement of a 4 KiB page
(text of Kyrgyz, Russian and English words, which compresses about as a news page does) is
made by the real probe on loopback (about 7.6 KB of JSON), and every stored measurement is that
document with its own uid, time, probe, network, target, timings, page (one of eight per
target) and verdict (92% ok, 4% blocked, 2% down, 2% inconclusive). The fleet: 50 probes on
7 networks of KG and KZ, 60 targets each, a round an hour.

For each store (SQLite; PostgreSQL with ``--postgres`` or ``--dsn``) the store is filled
through the Store interface (the collector's own write path, in batches of 1,000) up to each
size in turn, then the real collector runs as a child process on loopback and the bench
measures: bytes on disk per measurement (SQLite: file and WAL after a checkpoint;
PostgreSQL: ``pg_database_size``), durable HTTP ingest (8 clients, batches of 100, for
``--seconds``), the median latency of each read API call (9 calls each), /healthz and /metrics,
and the collector's RSS at the end and its peak (VmHWM). Before the ingest the collector's
detection is let catch up on what is stored (``detection_caught_up``): a kept store holds the
rows an earlier run ingested after its collector's last detection run (up to 30 s of ingest),
and digesting them beside this run's ingest charged it with another run's work, every other
run. Detection then runs at its configured cadence (every 30 s) during the ingest, and the
table says how many measurements it digested meanwhile. Prints one table. A PostgreSQL store
grown with ``--clone-from`` is first checked against a recount of its rows
(``bench/scale_clone``); nothing else is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import operator
import os
import random
import re
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_ingest import Collector, cpu_seconds, stat_fields, tree_pss_mb  # noqa: E402
from bench.measurement_format import WORDS, _serve  # noqa: E402
from bench.peak import status_mb  # noqa: E402
from bench.scale_clone import check_postgres, clone_postgres, clone_sqlite  # noqa: E402
from collector.api.query import encode_cursor  # noqa: E402
from collector.detect import extract, observed  # noqa: E402
from collector.store import StoredMeasurement, is_postgres, open_store  # noqa: E402
from collector.store.body import pack  # noqa: E402
from probe.core.measurement import envelope  # noqa: E402
from probe.nettests.web_connectivity import measure as web_check  # noqa: E402

NETWORKS = (("KG", "AS8449"), ("KG", "AS12997"), ("KG", "AS50223"), ("KZ", "AS9198"),
            ("KZ", "AS48716"), ("KZ", "AS21299"), ("KZ", "AS206026"))
PROBES = [(f"{cc.lower()}-{asn.lower()}-{i}", cc, asn)
          for i in range(8) for cc, asn in NETWORKS][:50]
TARGETS = [f"https://site{k}.{'kg' if k % 2 else 'kz'}.example/" for k in range(60)]
START = datetime(2026, 1, 1, tzinfo=UTC)
ROUND = timedelta(hours=1)
TIME = "%Y-%m-%d %H:%M:%S"
CALLS = 9
# The typed evidence a current probe sends with each verdict (``evidence_fields``): without
# it the collector's detection re-runs the analysis of every measurement, as it does for
# measurements recorded before the field existed.
_NO_EVIDENCE: dict[str, Any] = {
    "failed_layer": None, "failure": None, "control_unavailable": False,
    "control_failure": None, "blockpage": None, "confirmed": None, "issuer": None,
    "certificate_sha256": None, "dns_inconsistent": False, "slowdown": None,
    "goodput_ratio": None, "handshake_ratio": None, "goodput_comparable": None}
EVIDENCE: dict[str, dict[str, Any]] = {
    "ok": _NO_EVIDENCE,
    "blocked": {**_NO_EVIDENCE, "failed_layer": "tls", "failure": "generic_timeout_error"},
    "down": {**_NO_EVIDENCE, "failed_layer": "tcp", "failure": "generic_timeout_error",
             "control_failure": "generic_timeout_error"},
    "inconclusive": {**_NO_EVIDENCE, "control_unavailable": True,
                     "control_failure": "unknown_failure: no control configured"},
}


# (verdict, layer, mechanism) in the generator's proportions: 92 %, 4 %, 2 %, 2 %.
VERDICTS: tuple[tuple[str, str | None, str | None], ...] = (
    ("ok", None, None), ("blocked", "tls", "timeout"), ("down", None, None),
    ("inconclusive", None, None))
# An HTTP date's names (RFC 9110), whatever the machine's locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _page(rng: random.Random) -> str:
    parts = ["<html><head><title>News</title></head><body>\n"]
    while sum(len(p.encode()) for p in parts) < 4096:
        parts.append(f"<p id=\"{rng.getrandbits(32):08x}\">"
                     + " ".join(rng.choice(WORDS) for _ in range(12)) + "</p>\n")
    return "".join(parts)


async def template() -> dict[str, Any]:
    """One real measurement of a 4 KiB page, made by the probe on loopback."""
    page = _page(random.Random(0))
    runner, port = await _serve({"4": page}, hops=1)
    try:
        url = f"http://127.0.0.1:{port}/page/4"
        keys = await web_check.measure(url, web_check.WebOptions(dial_loopback=True), None)
        return envelope(test_name="web_connectivity", input_=url, test_keys=keys,
                        started=START, runtime=1.0)
    finally:
        await runner.cleanup()


class Generator:
    """Measurements of the fleet in time order, each from the template.

    The template is serialized once with markers in the fields that vary; each measurement
    is the marked text with its values put in (a deep copy and ``json.dumps`` per row would
    make the generator, not the store, the bottleneck)."""

    FIELDS = ("uid", "stamp", "target", "cc", "asn", "report", "probe", "ip", "host", "t0",
              "t1", "rt0", "ttfb", "rt", "bps", "page", "length", "sha", "date", "analysis")

    def __init__(self, base: dict[str, Any], seed: int = 1) -> None:
        self.rng = random.Random(seed)
        pages = {t: [_page(random.Random(f"{t}{v}")) for v in range(8)] for t in TARGETS}
        # (JSON-escaped text, byte length, sha256) of each page
        self.pages = {t: [(json.dumps(p, ensure_ascii=False)[1:-1], len(p.encode()),
                           hashlib.sha256(p.encode()).hexdigest()) for p in ps]
                      for t, ps in pages.items()}
        self.made = 0
        m = copy.deepcopy(base)
        mark = {f: f"@@{f}@@" for f in self.FIELDS}
        m.update(measurement_uid=mark["uid"], measurement_start_time=mark["stamp"],
                 test_start_time=mark["stamp"], input=mark["target"], probe_cc=mark["cc"],
                 probe_asn=mark["asn"], report_id=mark["report"],
                 annotations={**m["annotations"], "probe_id": mark["probe"]})
        keys = m["test_keys"]
        keys["tcp_connect"][0].update(ip=mark["ip"], port=443, t0=mark["t0"], t=mark["t1"])
        request = keys["requests"][0]
        request.update(address=mark["ip"] + ":443", t0=mark["rt0"], x_ttfb=mark["ttfb"],
                       t=mark["rt"], x_goodput_bps=mark["bps"])
        request["request"]["url"] = mark["target"]
        request["request"]["headers"]["Host"] = mark["host"]
        request["request"]["headers_list"][0][1] = mark["host"]
        response = request["response"]
        response.update(body=mark["page"], x_body_length=mark["length"],
                        x_body_sha256=mark["sha"])
        response["headers"]["Date"] = mark["date"]
        keys["network_events"][0].update(t=mark["rt"], address=mark["ip"] + ":443")
        keys["analysis"] = mark["analysis"]
        text = json.dumps(m, ensure_ascii=False, separators=(",", ":"))
        for name in ("t0", "t1", "rt0", "ttfb", "rt", "bps", "length", "analysis"):
            text = text.replace(f'"@@{name}@@"', f"@@{name}@@")  # numbers and objects
        # The text between the markers, and the markers' names in order: a measurement is
        # the text with the values put at every other place (a slice assignment and a join,
        # both in C; a loop over the pieces in Python cost a third of a measurement).
        self.parts = re.split(r"@@(\w+)@@", text)
        self.values_in_order = operator.itemgetter(*self.parts[1::2])
        self.parts_utf8 = [part.encode() for part in self.parts]
        self.pages_utf8 = {page: page.encode() for variants in self.pages.values()
                           for page, _, _ in variants}
        # The analysis of each verdict, serialized once.
        self.analyses = {
            verdict: json.dumps({"verdict": verdict, "layer": layer, "mechanism": mechanism,
                                 "confidence": 0.9, "evidence": [], "analysis_version": 2,
                                 "evidence_fields": EVIDENCE[verdict]}, separators=(",", ":"))
            for verdict, layer, mechanism in VERDICTS}

    def document(self, index: int, uid: str) -> tuple[str, dict[str, str]]:
        """The JSON text of measurement ``index`` and its columns."""
        pieces, columns = self._pieces(index, uid)
        return "".join(pieces), columns

    def utf8(self, index: int, uid: str) -> bytes:
        """``document``'s text in UTF-8, made from pieces already encoded (the template's and
        the pages'): encoding a batch's 780 KB of mixed text cost the load generator about
        as much as making it."""
        pieces, _ = self._pieces(index, uid)
        encoded = self.parts_utf8.copy()
        pages = self.pages_utf8
        encoded[1::2] = [pages.get(value) or value.encode() for value in pieces[1::2]]
        return b"".join(encoded)

    def _pieces(self, index: int, uid: str) -> tuple[list[str], dict[str, str]]:
        rng = self.rng
        probe_id, cc, asn = PROBES[(index // len(TARGETS)) % len(PROBES)]
        target = TARGETS[index % len(TARGETS)]
        hour = index // (len(TARGETS) * len(PROBES))
        started = START + hour * ROUND + timedelta(seconds=rng.randrange(3000))
        roll = rng.random()
        verdict, layer, mechanism = VERDICTS[0 if roll < 0.92 else 1 if roll < 0.96
                                             else 2 if roll < 0.98 else 3]
        page, length, sha = rng.choice(self.pages[target])
        t0 = rng.uniform(0.01, 0.2)
        t1 = t0 + rng.uniform(0.01, 0.1)
        stamp = (f"{started.year:04d}-{started.month:02d}-{started.day:02d} "
                 f"{started.hour:02d}:{started.minute:02d}:{started.second:02d}")
        pieces = self.parts.copy()
        pieces[1::2] = self.values_in_order({
            "uid": uid, "stamp": stamp, "target": target, "cc": cc, "asn": asn,
            "report": f"{stamp[0:4]}{stamp[5:7]}{stamp[8:10]}T{stamp[11:13]}{stamp[14:16]}"
                      f"{stamp[17:19]}Z_webconnectivity_{cc}_{asn[2:]}_n1_"
                      f"{rng.getrandbits(64):016x}",
            "probe": probe_id, "ip": f"198.51.{index % 200}.{rng.randrange(1, 255)}",
            "host": target.split("/")[2], "t0": f"{t0:.6f}", "t1": f"{t1:.6f}",
            "rt0": f"{t1 + 0.0001:.6f}", "ttfb": f"{t1 + rng.uniform(0.01, 1):.6f}",
            "rt": f"{t1 + rng.uniform(1, 2):.6f}", "bps": str(rng.randrange(100_000, 50_000_000)),
            "page": page, "length": str(length), "sha": sha,
            "date": f"{_DAYS[started.weekday()]}, {started.day:02d} {_MONTHS[started.month - 1]} "
                    f"{started.year:04d} {stamp[11:]} GMT",
            "analysis": self.analyses[verdict],
        })
        return pieces, {"probe_id": probe_id, "cc": cc, "asn": asn, "target": target,
                      "start_time": stamp, "uid": uid, "verdict": verdict,
                      "layer": layer or "", "mechanism": mechanism or ""}

    def rows(self, count: int) -> list[StoredMeasurement]:
        out = []
        for _ in range(count):
            index = self.made
            self.made += 1
            out.append(self.row(index))
        return out

    def row(self, index: int, packed: bool = False) -> StoredMeasurement:
        """Stored measurement ``index`` (uid ``s<index>``), with its observation as
        validation extracts it; ``packed``: with its body compressed as validation hands it
        to the store."""
        text, c = self.document(index, f"s{index:011d}")
        seen = observed.encode(extract.observation(json.loads(text), c["probe_id"]))
        return StoredMeasurement(
            uid=c["uid"], probe_id=c["probe_id"], test_name="web_connectivity",
            input=c["target"], probe_cc=c["cc"], probe_asn=c["asn"],
            start_time=c["start_time"], received_at=c["start_time"], verdict=c["verdict"],
            layer=c["layer"] or None, mechanism=c["mechanism"] or None, body=text,
            packed=pack(text) if packed else None, observation=seen)


_WORKER: Generator | None = None


def _start_worker(base: dict[str, Any]) -> None:
    global _WORKER
    _WORKER = Generator(base)


def _chunk(first: int, count: int) -> list[StoredMeasurement]:
    """Rows ``first`` .. ``first + count - 1``, made and compressed in a worker process (each
    chunk seeded by its first index, so a store is the same whatever the number of workers)."""
    assert _WORKER is not None
    _WORKER.rng = random.Random(first)
    return [_WORKER.row(i, packed=True) for i in range(first, first + count)]


async def fill(database: str, generator: Generator, upto: int, base: dict[str, Any],
               workers: int = 2, batch: int = 1000) -> float:
    """Store measurements until the store holds ``upto``, through the store's own write path
    (``add_measurements``, ``batch`` rows per transaction: PostgreSQL's detection feed hands
    out whole transactions, so larger ones would make its pages, and the collector's memory
    while it catches up, larger than any upload does); the rows are made and compressed by
    ``workers`` processes while the store writes. Returns rows per second."""
    store = await open_store(database)
    loop = asyncio.get_running_loop()
    started, added = time.perf_counter(), 0
    pending: deque[asyncio.Future[list[StoredMeasurement]]] = deque()
    try:
        with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(base,)) as pool:
            while generator.made < upto or pending:
                while generator.made < upto and len(pending) < 2 * workers:
                    count = min(batch, upto - generator.made)
                    pending.append(loop.run_in_executor(pool, _chunk, generator.made, count))
                    generator.made += count
                added += len(await store.add_measurements(await pending.popleft()))
    finally:
        await store.close()
    return added / max(time.perf_counter() - started, 1e-9)


async def disk_bytes(database: str) -> int:
    if is_postgres(database):
        import asyncpg

        conn = await asyncpg.connect(database)
        try:
            await conn.execute("CHECKPOINT")
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(p.stat().st_size for p in Path(database).parent.glob(Path(database).name + "*"))


async def server_pid(database: str) -> int | None:
    """The PostgreSQL server's main process when it runs on this machine (its CPU is counted
    beside the collector's), else None; None for SQLite, which runs inside the collector."""
    if not is_postgres(database):
        return None
    import asyncpg

    conn = await asyncpg.connect(database)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        return int(stat_fields(backend)[1])  # its parent, while it lives: the postmaster
    except OSError:
        return None  # a server elsewhere
    finally:
        await conn.close()


async def ingest(base: str, token: str, generator: Generator, seconds: float,
                 pid: int, server: int | None = None) -> dict[str, Any]:
    """Durable HTTP ingest for ``seconds``: 8 clients, batches of 100. The measurements
    continue the fleet's timeline after the stored ones (what a deployment receives: recent
    measurements, each with its own uid). Returns the rate, the load average at the start and
    the end, and the collector's RSS sampled every second."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    acked = 0
    deadline = time.perf_counter() + seconds
    prefix = secrets.token_hex(3)
    following = generator.made
    rss: list[float] = []
    pss: list[float] = []

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal acked, following
        n = 0
        while time.perf_counter() < deadline:
            first, following = following, following + 100
            docs = [generator.utf8(first + i, f"h{prefix}c{index}n{n + i}")
                    for i in range(100)]
            n += 100
            body = b'{"measurements":[' + b",".join(docs) + b"]}"
            async with session.post(base + "/api/v1/measurements", data=body,
                                    headers=headers) as response:
                text = await response.text()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {text[:300]}")
                acked += len(json.loads(text)["stored"])

    async def sample() -> None:
        while time.perf_counter() < deadline:
            rss.append(status_mb("VmRSS", pid))
            pss.append(tree_pss_mb(pid))
            await asyncio.sleep(1)

    load_before = os.getloadavg()[0]
    cpu = cpu_seconds(pid)
    server_cpu = cpu_seconds(server) if server is not None else 0.0
    own_cpu = time.process_time()
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(sample(), *(client(i, session) for i in range(8)))
    rate = acked / (time.perf_counter() - start)
    # The collector's CPU time (every thread: HTTP, validation, the store, detection) per
    # measurement acknowledged: what the load average cannot distort.
    # Beside it, the PostgreSQL server's (its backends, WAL writer, checkpointer; an
    # autovacuum worker that ended during the run is missed) and this load generator's: the
    # three share the machine's cores.
    per = 1e6 / max(acked, 1)
    return {"rate": rate, "load": (load_before, os.getloadavg()[0]), "rss": rss, "pss": pss,
            "acked": acked, "cpu_us": per * (cpu_seconds(pid) - cpu),
            "server_cpu_us": per * (cpu_seconds(server) - server_cpu)
            if server is not None else None,
            "client_cpu_us": per * (time.process_time() - own_cpu)}


def read_calls(generator: Generator) -> list[tuple[str, str]]:
    last_hour = (generator.made - 1) // (len(TARGETS) * len(PROBES))
    end = START + (last_hour + 1) * ROUND
    day = (end - timedelta(days=1)).strftime("%Y-%m-%d")
    month_ago = (end - timedelta(days=30)).strftime("%Y-%m-%dT%H:00:00Z")
    week_ago = (end - timedelta(days=7)).strftime("%Y-%m-%dT%H:00:00Z")
    until = end.strftime("%Y-%m-%dT%H:00:00Z")
    state = generator.rng.getstate()
    _, middle = generator.document(generator.made // 2, f"s{generator.made // 2:011d}")
    generator.rng.setstate(state)
    cursor = encode_cursor(middle["start_time"], middle["uid"])
    return [
        ("newest page (100)", "/api/v1/measurements?limit=100"),
        ("newest page, full=true (20)", "/api/v1/measurements?limit=20&full=true"),
        ("cc + domain + day", f"/api/v1/measurements?cc=KG&domain=site7.kg.example"
                              f"&since={day}&until={day}T23:59:59Z"),
        ("deep cursor page", f"/api/v1/measurements?limit=100&cursor={cursor}"),
        ("aggregation: day, 30 days", f"/api/v1/aggregation?axis_x=day&since={month_ago}"
                                      f"&until={until}"),
        ("aggregation: asn", "/api/v1/aggregation?axis_x=asn"),
        ("aggregation: cc x asn", "/api/v1/aggregation?axis_x=cc&axis_y=asn"),
        ("aggregation: domain x cc", "/api/v1/aggregation?axis_x=domain&axis_y=cc"),
        ("aggregation: hour, KG, 7 days", f"/api/v1/aggregation?axis_x=hour&cc=KG"
                                          f"&since={week_ago}&until={until}"),
        ("aggregation: day x test_name, KZ", "/api/v1/aggregation?axis_x=day"
                                             "&axis_y=test_name&cc=KZ"),
        ("aggregation: input, KG, 1 day", f"/api/v1/aggregation?axis_x=input&cc=KG"
                                          f"&since={day}"),
        ("/healthz", "/healthz"),
        ("/metrics", "/metrics"),
    ]


async def reads(base: str, calls: list[tuple[str, str]]) -> dict[str, float]:
    out = {}
    async with aiohttp.ClientSession() as session:
        for name, path in calls:
            times = []
            for _ in range(CALLS):
                t0 = time.perf_counter()
                async with session.get(base + path) as response:
                    await response.read()
                    if response.status != 200:  # reported in the table, not hidden
                        print(f"{path}: HTTP {response.status} after "
                              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
                        times = [float("nan")]
                        break
                times.append(time.perf_counter() - t0)
            out[name] = 1000 * median(times)
    return out


async def detection_counts(base: str) -> dict[str, float]:
    """From the collector's /metrics: its detection runs that completed, the measurements they
    read, and its lag (0 when caught up)."""
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        text = await response.text()
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    return {"runs": values.get(("kuzot_detection_runs_total", (("outcome", "ok"),)), 0.0),
            "digested": values.get(
                ("kuzot_detection_inputs_total", (("kind", "measurement"),)), 0.0),
            "lag": values.get(("kuzot_detection_lag_seconds", ()), 0.0)}


async def detection_caught_up(base: str, patience: float = 1800.0) -> float:
    """Seconds until the collector's detection has run and has no backlog (see the module's
    docstring); raises after ``patience``."""
    started = time.perf_counter()
    while time.perf_counter() - started < patience:
        counts = await detection_counts(base)
        if counts["runs"] >= 1 and counts["lag"] == 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    raise RuntimeError(f"detection did not catch up in {patience:.0f} s")


class SlowStopCollector(Collector):
    """The collector, given a minute to stop: a loaded machine can take longer than 10 s."""

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def grow(database: str, generator: Generator, upto: int, clone_from: int) -> float:
    """Copy the first ``clone_from`` rows until ``upto`` are stored (``bench/scale_clone``);
    returns rows per second (on PostgreSQL, without the recount that checks the copy)."""
    started, have = time.perf_counter(), generator.made
    if is_postgres(database):
        store = await open_store(database)
        try:
            await clone_postgres(store, clone_from, upto, have, START)
            rate = (upto - have) / max(time.perf_counter() - started, 1e-9)
            checked = await check_postgres(database)
            print(f"clone checked against a recount: {checked}", file=sys.stderr, flush=True)
        finally:
            await store.close()
    else:
        await asyncio.to_thread(clone_sqlite, database, clone_from, upto, have)
        rate = (upto - have) / max(time.perf_counter() - started, 1e-9)
    generator.made = upto
    return rate


async def stored(database: str) -> int:
    store = await open_store(database)
    try:
        return await store.count_measurements()
    finally:
        await store.close()


def _catch_up_cell(result: dict[str, Any] | None) -> str:
    if not result:
        return "not run"
    return f"{result['seconds']:.1f} ({result['rows'] / max(result['seconds'], 1e-9):,.0f})"


def catch_up(database: str) -> dict[str, Any]:
    """Detection catching up on the whole store from cursor 0, as after a restore or a long
    stop, in a child process of its own (``bench/detection_catchup.py``: the real pipeline,
    its time and peak RSS). Done before the collector starts, so the collector then finds
    detection caught up and its ingest is measured without the catch-up beside it."""
    child = subprocess.run([sys.executable, str(ROOT / "bench" / "detection_catchup.py"),
                            "--catch-up", database], check=True, capture_output=True,
                           text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def measure(tmp: Path, name: str, database: str, sizes: list[int], seconds: float,
            base: dict[str, Any], workers: int, clone_from: int = 0,
            catch_up_upto: int = 1_000_000) -> list[dict[str, Any]]:
    generator = Generator(base)
    results = []
    for size in sizes:
        print(f"{name}: filling to {size:,}", file=sys.stderr, flush=True)
        existing = asyncio.run(stored(database))  # a store kept from an earlier run
        if existing >= size:
            generator.made, rate = size, float("nan")
        elif clone_from and size > clone_from:
            generator.made = max(generator.made, existing)
            if generator.made < clone_from:
                asyncio.run(fill(database, generator, clone_from, base, workers))
            rate = asyncio.run(grow(database, generator, size, clone_from))
        else:
            rate = asyncio.run(fill(database, generator, size, base, workers))
        # Per row actually stored: a kept store holds what earlier runs ingested beyond
        # ``size`` too (13.4M rows in a "10M" file after a dozen runs).
        rows = asyncio.run(stored(database))
        row: dict[str, Any] = {"store": name, "size": size, "fill_rate": rate, "rows": rows,
                               "bytes": asyncio.run(disk_bytes(database)) / rows}
        # A kept store's detection state was saved by the last run's collector: its catch-up
        # would resume from there, not read the whole store, so it is not timed.
        row["catch_up"] = catch_up(database) if size <= catch_up_upto and existing < size \
            else None
        collector = SlowStopCollector(tmp, database)
        with collector as (url, token):
            pid = collector.process.pid
            row["reads"] = asyncio.run(reads(url, read_calls(generator)))
            row["detection_wait"] = asyncio.run(detection_caught_up(url))
            before = asyncio.run(detection_counts(url))
            done = asyncio.run(ingest(url, token, generator, seconds, pid,
                                      asyncio.run(server_pid(database))))
            after = asyncio.run(detection_counts(url))
            row["digested"] = after["digested"] - before["digested"]
            row["detection_runs"] = after["runs"] - before["runs"]
            row["ingest"], row["load"] = done["rate"], done["load"]
            row["ingest_rss"], row["cpu_us"] = done["rss"], done["cpu_us"]
            row["server_cpu_us"] = done["server_cpu_us"]
            row["client_cpu_us"] = done["client_cpu_us"]
            row["ingest_pss"] = done["pss"]
            row["metrics_after_ingest"] = asyncio.run(reads(url, [("m", "/metrics")]))["m"]
            row["rss"], row["peak_rss"] = status_mb("VmRSS", pid), status_mb("VmHWM", pid)
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return results


AGGREGATIONS: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    ("everything", {}, ()),
    ("day, whole days", {"since": "2026-01-01 00:00:00"}, ("day",)),
    ("day, whole hours", {"since": "2026-01-01 01:00:00"}, ("day",)),
    ("asn", {}, ("asn",)),
    ("cc x asn", {}, ("cc", "asn")),
    ("domain x cc", {}, ("domain", "cc")),
    ("hour, KG", {"cc": "KG"}, ("hour",)),
    ("input, KZ", {"cc": "KZ"}, ("input",)),
]


async def compare_aggregations(database: str, repeat: int) -> list[tuple[str, float, float]]:
    """Median ms of each aggregation through the store (rollups) and as the scan of
    ``measurements`` the store ran before the rollups, on the same data, in process."""
    from collector.store import Filters
    from collector.store import sql as store_sql

    store = await open_store(database)
    dialect = store.dialect  # type: ignore[attr-defined]
    out = []
    try:
        for name, fields, axes in AGGREGATIONS:
            filters = Filters(**fields)

            async def rollups(f: Filters = filters, a: Any = axes) -> Any:
                return await store.aggregate(f, a, 10_000)

            async def scan(f: Filters = filters, a: Any = axes) -> Any:
                params = dialect.params()
                query = store_sql._grouped(dialect.axes, a, store_sql.count_expressions(),
                                           "measurements", store_sql.where(f, params),
                                           params, 10_001)
                fetch = store._fetch  # type: ignore[attr-defined]
                rows = (await fetch(query, *params.values) if is_postgres(database)
                        else await fetch(query, params.values))
                return [{k: (int(r[k] or 0) if k.endswith("_count") else r[k])
                         for k in r.keys()} for r in rows]

            times: dict[str, list[float]] = {"rollups": [], "scan": []}
            answers = {}
            for _ in range(repeat):
                for label, call in (("rollups", rollups), ("scan", scan)):
                    t0 = time.perf_counter()
                    answers[label] = await call()
                    times[label].append(1000 * (time.perf_counter() - t0))
            if answers["rollups"] != answers["scan"]:
                raise RuntimeError(f"{name}: the rollups and the scan disagree")
            out.append((name, median(times["rollups"]), median(times["scan"])))
    finally:
        await store.close()
    return out


def report(results: list[dict[str, Any]]) -> None:
    columns = [(r["store"], r["size"]) for r in results]
    print("| | " + " | ".join(f"{s} {n:,}" for s, n in columns) + " |")
    print("|---|" + "---:|" * len(columns))

    def line(label: str, values: list[str]) -> None:
        print(f"| {label} | " + " | ".join(values) + " |")

    line("bytes on disk per measurement", [f"{r['bytes']:,.0f}" for r in results])
    line("measurements stored when measured", [f"{r['rows']:,}" for r in results])
    line("fill through the Store, rows/s", [f"{r['fill_rate']:,.0f}" for r in results])
    line("HTTP ingest, 8 clients x 100, /s", [f"{r['ingest']:,.0f}" for r in results])
    line("collector CPU (with its workers) per measurement ingested, us", [f"{r['cpu_us']:,.0f}"
                                                         for r in results])
    for label, key in (("PostgreSQL server CPU per measurement ingested, us", "server_cpu_us"),
                       ("load generator CPU per measurement, us", "client_cpu_us")):
        line(label, [f"{r[key]:,.0f}" if r.get(key) is not None else "-" for r in results])
    line("load average at the ingest's start / end", [f"{r['load'][0]:.1f} / {r['load'][1]:.1f}"
                                                      for r in results])
    line("detection caught up before the ingest after, s",
         [f"{r['detection_wait']:.1f}" for r in results])
    line("measurements detection digested during the ingest (its runs)",
         [f"{r['digested']:,.0f} ({r['detection_runs']:.0f})" for r in results])
    line("collector RSS during the ingest, max MB", [f"{max(r['ingest_rss'] or [0]):.0f}"
                                                      for r in results])
    for name in results[0]["reads"]:
        line(f"{name}, median ms", [f"{r['reads'][name]:.1f}" if r["reads"][name] == r["reads"][
            name] else "failed (503)" for r in results])
    line("/metrics right after ingest, ms", [f"{r['metrics_after_ingest']:.1f}"
                                             for r in results])
    line("collector with its ingest workers, PSS during the ingest, max MB",
         [f"{max(r['ingest_pss'] or [0]):.0f}" for r in results])
    line("detection catching up on the whole store, s (rows/s)",
         [_catch_up_cell(r.get("catch_up")) for r in results])
    line("detection catching up, peak RSS MB",
         [f"{r['catch_up']['peak_rss_mb']:.0f}" if r.get("catch_up") else "not run"
          for r in results])
    line("collector RSS at the end, MB", [f"{r['rss']:.0f}" for r in results])
    line("collector peak RSS, MB", [f"{r['peak_rss']:.0f}" for r in results])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dsn", help="PostgreSQL DSN (an empty database) beside SQLite")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throwaway PostgreSQL cluster beside SQLite")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--keep", type=Path, help="directory for the SQLite file (kept)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes that make and compress the rows of the fill")
    parser.add_argument("--reference", type=int, default=0, metavar="SIZE",
                        help="then measure a new store of SIZE the same way (SQLite, and "
                             "PostgreSQL in the same cluster): the same run's reference for "
                             "the rates")
    parser.add_argument("--clone-from", type=int, default=0, metavar="N",
                        help="fill N rows through the store, then copy them in SQL up to "
                             "each larger size (bench/scale_clone.py)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each aggregation")
    parser.add_argument("--catch-up-upto", type=int, default=1_000_000, metavar="N",
                        help="time detection catching up on stores of at most N rows (0: none;"
                             " 10M rows took 4 minutes here; a kept store is not timed)")
    parser.add_argument("--aggregations", metavar="DATABASE",
                        help="only time each aggregation from the rollups and as a scan of "
                             "the measurements, on a store filled before (--keep)")
    args = parser.parse_args()
    if args.aggregations:
        print("| aggregation | rollups, median ms | scan of measurements, median ms |")
        print("|---|---:|---:|")
        for name, fast, slow in asyncio.run(compare_aggregations(args.aggregations,
                                                                          args.repeat)):
            print(f"| {name} | {fast:.1f} | {slow:.1f} |")
        return 0
    base = asyncio.run(template())
    run = partial(measure, catch_up_upto=args.catch_up_upto)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.no_sqlite:
            folder = args.keep or tmp
            folder.mkdir(parents=True, exist_ok=True)
            results += run(tmp, "SQLite", str(folder / "scale.sqlite"), args.sizes,
                               args.seconds, base, args.workers, args.clone_from)
            if args.reference:
                results += run(tmp, "SQLite (reference)", str(tmp / "reference.sqlite"),
                                   [args.reference], args.seconds, base, args.workers)
        if args.postgres:
            from tests.helpers.postgres import PostgresCluster, unavailable_reason

            reason = unavailable_reason()
            if reason:
                parser.error(reason)
            cluster = PostgresCluster.start()
            try:
                cluster.execute("CREATE DATABASE kuzot_scale")
                results += run(tmp, "PostgreSQL", cluster.dsn("kuzot_scale"), args.sizes,
                                   args.seconds, base, args.workers, args.clone_from)
                if args.reference:
                    cluster.execute("CREATE DATABASE kuzot_reference")
                    results += run(tmp, "PostgreSQL (reference)",
                                       cluster.dsn("kuzot_reference"), [args.reference],
                                       args.seconds, base, args.workers)
            finally:
                cluster.stop()
        elif args.dsn:
            results += run(tmp, "PostgreSQL", args.dsn, args.sizes, args.seconds, base,
                               args.workers, args.clone_from)
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
