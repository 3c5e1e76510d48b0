"""Detection catching up on a large backlog: wall time and peak memory of the pipeline.

Run: ``python bench/detection_catchup.py --rows 1000000 [--rows 5000000] [--keep DIR]``

For each size a SQLite store is filled straight through SQL (``executemany``, no HTTP) with a
fleet's measurements and heartbeats in arrival order: 40 probes on 4 networks of one country,
60 targets each, a round every 15 minutes, a heartbeat a minute, bodies of about 1.3 KB (a
web_connectivity measurement with its records and analysis), and one national block of three
targets for six hours so detection has something to find. Nothing is judged while it is
stored; then a fresh child process (so the peak RSS is the pipeline's alone) runs the real
``collector.pipeline.Pipeline`` from cursor 0 until it has caught up, exactly as a collector
does after a restore or a long stop, and reports the time, the rows per second, the peak RSS
(``VmHWM``, ``bench/peak.py``) and the events it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peak import peak_rss_mb  # noqa: E402
from collector.store import open_store  # noqa: E402
from probe.core.evidence import facts  # noqa: E402

PROBES_PER_ASN = 10
ASNS = ("AS9198", "AS48716", "AS21299", "AS206026")
TARGETS = 60
ROUND = 900.0
HEARTBEAT = 60.0
UPLOAD_DELAY = 30.0
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
BLOCKED = (0, 1, 2)  # target indexes blocked nationally in the block window
BLOCK_FROM, BLOCK_HOURS = 2 * 86400.0, 6.0

BODY = (
    '{{"measurement_uid":"{uid}","probe_cc":"KZ","probe_asn":"{asn}",'
    '"test_name":"web_connectivity","test_version":"0.5.0",'
    '"measurement_start_time":"{started}","test_start_time":"{started}","test_runtime":1.2,'
    '"input":"{url}","probe_ip":"127.0.0.1","software_name":"kuzot",'
    '"software_version":"0.1.0","report_id":"r{uid}","annotations":{{}},'
    '"test_keys":{{"queries":[{{"engine":"getaddrinfo","hostname":"{host}","failure":null,'
    '"answers":[{{"answer_type":"A","ipv4":"104.21.3.4","ttl":null}}],"t0":0.0,"t":0.01}}],'
    '"tcp_connect":[{{"ip":"104.21.3.4","port":443,"t0":0.01,"t":0.05,'
    '"status":{{"success":true,"failure":null,"blocked":null}}}}],'
    '"tls_handshakes":[{{"address":"104.21.3.4:443","server_name":"{host}",'
    '"failure":{tls_failure},"t0":0.05,"t":{tls_end}}}],'
    '"requests":[],"control_failure":null,"blocking":{blocking},"accessible":{accessible},'
    '"analysis":{{"verdict":"{verdict}","layer":{layer},"mechanism":{mechanism},'
    '"confidence":0.8,"evidence":{evidence},"evidence_fields":{fields}}}}}}}')
def _fields(evidence: str) -> str:
    """The typed evidence a current probe writes beside the strings (``evidence_fields``)."""
    return json.dumps(facts(json.loads(evidence)).to_wire(), separators=(",", ":"))


OK = {"tls_failure": "null", "tls_end": "0.21", "blocking": "false", "accessible": "true",
      "verdict": "ok", "layer": "null", "mechanism": "null", "evidence": '["https_status:200"]',
      "fields": _fields('["https_status:200"]')}
BLOCKED_FIELDS = {
    "tls_failure": '"generic_timeout_error"', "tls_end": "10.05", "blocking": '"http-failure"',
    "accessible": "false", "verdict": "blocked", "layer": '"tls"', "mechanism": '"timeout"',
    "evidence": '["probe_tls:generic_timeout_error","control_tls:ok"]',
    "fields": _fields('["probe_tls:generic_timeout_error","control_tls:ok"]')}
COLUMNS = ("uid", "probe_id", "test_name", "input", "probe_cc", "probe_asn", "start_time",
           "received_at", "verdict", "layer", "mechanism", "body", "domain")


def _text(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _rows(count: int) -> Any:
    """Measurement rows and heartbeat rows in arrival order, ``count`` measurements in all."""
    probes = [(f"{asn.lower()}-{i}", asn) for asn in ASNS for i in range(PROBES_PER_ASN)]
    made = 0
    t = START
    next_heartbeat = START
    while made < count:
        heartbeats = []
        while next_heartbeat < t + ROUND:
            stamp = _text(next_heartbeat)
            for probe_id, asn in probes:
                body = json.dumps({"probe_id": probe_id, "sent_at": stamp, "queue_depth": 0,
                                   "probe_cc": "KZ", "probe_asn": asn})
                heartbeats.append((probe_id, stamp, stamp, body))
            next_heartbeat += HEARTBEAT
        measurements = []
        blocking = START + BLOCK_FROM <= t < START + BLOCK_FROM + BLOCK_HOURS * 3600
        received = _text(t + UPLOAD_DELAY)
        for number, (probe_id, asn) in enumerate(probes):
            for k in range(TARGETS):
                if made >= count:
                    break
                started = _text(t + number + k)
                host = f"site{k}.example"
                url = f"https://{host}/"
                fields = BLOCKED_FIELDS if blocking and k in BLOCKED else OK
                uid = f"bench{made:010d}"
                body = BODY.format(uid=uid, asn=asn, started=started, url=url, host=host,
                                   **fields)
                layer = "tls" if fields is BLOCKED_FIELDS else None
                measurements.append((uid, probe_id, "web_connectivity", url, "KZ", asn,
                                     started, received, fields["verdict"], layer,
                                     "timeout" if layer else None, body, host))
                made += 1
        yield measurements, heartbeats
        t += ROUND


async def _create(database: str) -> None:
    store = await open_store(database)  # the collector's own schema and migrations
    await store.close()


def generate(database: str, count: int) -> float:
    """Fill ``database`` with ``count`` measurements (and the heartbeats of that time)."""
    asyncio.run(_create(database))
    started = time.perf_counter()
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    insert = (f"INSERT INTO measurements ({','.join(COLUMNS)}) "
              f"VALUES ({','.join('?' * len(COLUMNS))})")
    for measurements, heartbeats in _rows(count):
        db.executemany("INSERT INTO heartbeats (probe_id, sent_at, received_at, body) "
                       "VALUES (?, ?, ?, ?)", heartbeats)
        db.executemany(insert, measurements)
        db.commit()
    db.close()
    return time.perf_counter() - started


async def _catch_up(database: str) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from collector.detect.params import DetectionConfig, NetworkRoles
    from collector.detect.windows import Calendar
    from collector.metrics.detection import DetectionMetrics, EventSnapshot
    from collector.pipeline import Pipeline
    from collector.store import EventFilter

    store = await open_store(database)
    rows = sum(r[0] for r in await store._fetch(  # type: ignore[attr-defined]
        "SELECT count(*) FROM measurements UNION ALL SELECT count(*) FROM heartbeats"))
    last = (await store._fetch(  # type: ignore[attr-defined]
        "SELECT max(received_at) FROM measurements"))[0][0]
    if isinstance(last, datetime):  # PostgreSQL's timestamp
        now = last.replace(tzinfo=UTC).timestamp() + 60
    else:
        now = datetime.strptime(last, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() + 60
    config = DetectionConfig(networks={"KZ": NetworkRoles(incumbent=("AS9198",))})
    pipeline = Pipeline(store, config, Calendar(), DetectionMetrics(CollectorRegistry()),
                        EventSnapshot(), clock=lambda: now)
    started = time.perf_counter()
    try:
        await pipeline.start()
        runs = 0
        while True:
            before = dict(pipeline.cursors)
            await pipeline.run_once(now)
            runs += 1
            # (Older pipelines without ``caught_up``: until a run reads nothing new.)
            if getattr(pipeline, "caught_up", pipeline.cursors == before):
                break
        seconds = time.perf_counter() - started
        events = await store.events(EventFilter(limit=1000))
    finally:
        await store.close()
    return {"rows": rows, "seconds": seconds, "runs": runs,
            "peak_rss_mb": peak_rss_mb(),
            "events": sorted(f"{e['kind']}/{e['tier']}/{len(e['targets'])} targets"
                             for e in events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, action="append",
                        help="measurements to store and catch up on (repeatable)")
    parser.add_argument("--keep", help="directory for the databases (kept afterwards)")
    parser.add_argument("--catch-up", help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.catch_up:
        print(json.dumps(asyncio.run(_catch_up(args.catch_up))))
        return
    sizes = args.rows or [1_000_000]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print("| measurements | heartbeats | database | store (s) | catch-up (s) | rows/s | "
              "runs | peak RSS (MB) | events |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size in sizes:
            database = str(folder / f"backlog-{size}.sqlite")
            Path(database).unlink(missing_ok=True)
            stored = generate(database, size)
            child = subprocess.run(
                [sys.executable, __file__, "--catch-up", database], check=True,
                capture_output=True, text=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            heartbeats = result["rows"] - size
            megabytes = Path(database).stat().st_size / 1e6
            print(f"| {size:,} | {heartbeats:,} | {megabytes:,.0f} MB | {stored:.0f} | "
                  f"{result['seconds']:.0f} | {result['rows'] / result['seconds']:,.0f} | "
                  f"{result['runs']} | {result['peak_rss_mb']:.0f} | "
                  f"{', '.join(result['events']) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
