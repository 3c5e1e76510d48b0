"""Collector ingest throughput, acknowledged durably, beside the store's raw insert rate.

Run: ``python bench/collector_ingest.py [--seconds 10] [--clients 8] [--dsn postgresql://...]``
or ``--postgres`` to start a throwaway PostgreSQL cluster for the run (Debian's ``postgresql``,
as the tests do).

For each store (SQLite always; PostgreSQL when ``--dsn`` is given) and batch size (1, 100) the
real collector runs as a child process on loopback and concurrent clients post measurements
for a fixed time; a measurement counts only once its batch got a 200 (which the collector
sends after the commit). The "raw store" row inserts the same rows straight through the Store
interface in batches of 100 with no HTTP, validation or JSON parsing: the physical limit.
Then ``/metrics`` is scraped with 10,000 target-verdict series in each store, right after new
measurements arrived and with nothing new, with the collector's CPU time per scrape beside
the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throwaway_postgres import throwaway_database  # noqa: E402
from collector.store import StoredMeasurement, open_store  # noqa: E402
from probe.core.evidence import with_fields  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402


def measurement(uid: str, target: str = "https://kloop.kg/") -> dict[str, Any]:
    """A realistic small web_connectivity measurement (about 1.5 KB)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "measurement_uid": uid, "probe_cc": "KG", "probe_asn": "AS8449",
        "test_name": "web_connectivity", "test_version": "0.5.0",
        "measurement_start_time": now, "test_start_time": now, "test_runtime": 1.2,
        "input": target, "probe_ip": "127.0.0.1", "software_name": "kuzot",
        "software_version": "0.1.0", "report_id": "r" + uid, "annotations": {},
        "test_keys": {
            "queries": [{"engine": "getaddrinfo", "hostname": "kloop.kg", "failure": None,
                         "answers": [{"answer_type": "A", "ipv4": "104.21.3.4", "ttl": None}],
                         "t0": 0.0, "t": 0.01}],
            "tcp_connect": [{"ip": "104.21.3.4", "port": 443, "t0": 0.01, "t": 0.05,
                             "status": {"success": True, "failure": None, "blocked": None}}],
            "tls_handshakes": [{"address": "104.21.3.4:443", "server_name": "kloop.kg",
                                "failure": "generic_timeout_error", "t0": 0.05, "t": 10.05}],
            "requests": [], "control_failure": None, "blocking": "http-failure",
            "accessible": False,
            "analysis": with_fields({"verdict": "blocked", "layer": "tls",
                                     "mechanism": "timeout", "confidence": 0.8,
                                     "evidence": ["probe_tls:generic_timeout_error",
                                                  "control_tls:ok"]}),
        },
    }


async def http_run(base: str, token: str, batch: int, clients: int, seconds: float) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    acked = 0
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal acked
        async with aiohttp.ClientSession() as session:
            n = 0
            while time.perf_counter() < deadline:
                docs = [measurement(f"b{batch}c{index}n{n + i}{secrets.token_hex(4)}")
                        for i in range(batch)]
                n += batch
                body = docs[0] if batch == 1 else {"measurements": docs}
                async with session.post(base + "/api/v1/measurements", json=body,
                                        headers=headers) as response:
                    if response.status == 200:
                        acked += len((await response.json())["stored"])
                    else:
                        raise RuntimeError(f"HTTP {response.status}: {await response.text()}")

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return acked / (time.perf_counter() - start)


async def raw_run(database: str, seconds: float) -> float:
    store = await open_store(database)
    count = 0
    start = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    try:
        while time.perf_counter() - start < seconds:
            rows = []
            for _ in range(100):
                doc = measurement("raw" + secrets.token_hex(8))
                rows.append(StoredMeasurement(
                    uid=str(doc["measurement_uid"]), probe_id="raw", test_name="web_connectivity",
                    input="https://kloop.kg/", probe_cc="KG", probe_asn="AS8449", start_time=now,
                    received_at=now, verdict="blocked", layer="tls", mechanism="timeout",
                    body=json.dumps(doc)))
            count += len(await store.add_measurements(rows))
    finally:
        await store.close()
    return count / (time.perf_counter() - start)


ROUNDS = 9


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the process's name: its state, its parent's
    pid, ... (``proc(5)``, from the third field on)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the collector's fork server and ingest workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(stat_fields(int(entry.name))[1])
            except (OSError, IndexError):
                continue  # gone meanwhile
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and the processes below it, from /proc
    (a worker that has exited no longer counts)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = stat_fields(member)
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and those below it, MiB: memory shared between the
    collector's workers (forked from one server) counted once in all, not once each as RSS
    would count it."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def scrape_time(base: str, token: str, series: int, pid: int) -> dict[str, float]:
    """Fill the store with ``series`` distinct targets, then time /metrics scrapes: right after
    100 new measurements arrived (as between two scrapes of a busy collector; what changed is
    rendered again) and with nothing new (what is cached is reused)."""
    headers = {"Authorization": f"Bearer {token}"}

    async def post(docs: list[dict[str, Any]]) -> None:
        async with session.post(base + "/api/v1/measurements",
                                json={"measurements": docs}, headers=headers) as response:
            assert response.status == 200, await response.text()

    async def scrape() -> tuple[float, float, str]:
        cpu, t0 = cpu_seconds(pid), time.perf_counter()
        async with session.get(base + "/metrics") as response:
            text = await response.text()
        return time.perf_counter() - t0, cpu_seconds(pid) - cpu, text

    async with aiohttp.ClientSession() as session:
        for start in range(0, series, 500):
            await post([measurement(f"s{i}{secrets.token_hex(4)}", f"https://t{i}.example/")
                        for i in range(start, min(series, start + 500))])
        await scrape()  # the first scrape renders everything once
        after_ingest, unchanged, after_cpu, unchanged_cpu = [], [], [], []
        for round_ in range(ROUNDS):
            await post([measurement(f"r{round_}n{i}{secrets.token_hex(4)}",
                                    f"https://t{secrets.randbelow(series)}.example/")
                        for i in range(100)])
            seconds, cpu, _ = await scrape()
            after_ingest.append(seconds)
            after_cpu.append(cpu)
            seconds, cpu, text = await scrape()
            unchanged.append(seconds)
            unchanged_cpu.append(cpu)
    lines = text.splitlines()
    return {"after_ingest": median(after_ingest), "unchanged": median(unchanged),
            "after_ingest_cpu": sum(after_cpu) / ROUNDS,
            "unchanged_cpu": sum(unchanged_cpu) / ROUNDS,
            "verdict_series": sum(1 for line in lines if line.startswith("kuzot_target_verdict")),
            "samples": sum(1 for line in lines if not line.startswith("#")),
            "megabytes": len(text.encode()) / 1e6}


class Collector:
    def __init__(self, tmp: Path, database: str, targets: int = 0) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = tmp / f"collector-{self.port}.yaml"
        # Only configured targets become metric labels (others fold into target="other").
        listed = json.dumps([f"https://t{i}.example/" for i in range(targets)])
        self.config.write_text(f"listen: 127.0.0.1:{self.port}\ndatabase: '{database}'\n"
                               "limits: {rate_per_minute: 100000000}\n"
                               f"targets: {listed}\n")

    def __enter__(self) -> tuple[str, str]:
        token = subprocess.run([sys.executable, "-m", "collector", "token", "issue",
                                "--probe-id", "bench", "--config", str(self.config)],
                               check=True, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        self.process = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--config",
                                         str(self.config)], cwd=ROOT, stdout=subprocess.DEVNULL)
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        return self.base, token

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--dsn", help="PostgreSQL DSN to benchmark beside SQLite")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throwaway PostgreSQL cluster and benchmark it beside SQLite")
    parser.add_argument("--series", type=int, default=10000)
    args = parser.parse_args()
    if args.postgres:
        with throwaway_database(parser, "kuzot_bench") as dsn:
            args.dsn = dsn
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    results: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stores = [("sqlite", str(tmp / "bench.sqlite"))]
        if args.dsn:
            stores.append(("postgresql", args.dsn))
        for name, database in stores:
            results.append((name, "raw store, batch 100",
                            asyncio.run(raw_run(database, args.seconds))))
            for batch in (1, 100):
                with Collector(tmp, database) as (base, token):
                    rate = asyncio.run(http_run(base, token, batch, args.clients, args.seconds))
                results.append((name, f"HTTP ingest, batch {batch}", rate))
        scrapes: list[tuple[str, dict[str, float]]] = []
        for name, database in stores:
            if name == "sqlite":
                database = str(tmp / "scrape.sqlite")  # a fresh one; PostgreSQL's is reused
            collector = Collector(tmp, database, args.series)
            with collector as (base, token):
                scrapes.append((name, asyncio.run(
                    scrape_time(base, token, args.series, collector.process.pid))))
    print(f"{args.clients} concurrent clients, {args.seconds:.0f} s per row, durable acks only")
    print(f"{'store':<11} {'path':<24} {'measurements/s':>15}")
    for store, path, rate in results:
        print(f"{store:<11} {path:<24} {rate:>15,.0f}")
    print(f"\n/metrics, {ROUNDS} scrapes each (goal < 100 ms):")
    print(f"{'store':<11} {'verdict series':>14} {'samples':>8} {'MB':>4}  {'scrape':<34} "
          f"{'median wall ms':>14} {'collector CPU ms':>16}")
    for store, scrape in scrapes:
        for label, key in (("after 100 new measurements", "after_ingest"),
                           ("nothing new since the last scrape", "unchanged")):
            print(f"{store:<11} {scrape['verdict_series']:>14,.0f} {scrape['samples']:>8,.0f} "
                  f"{scrape['megabytes']:>4.1f}  {label:<34} {1000 * scrape[key]:>14.1f} "
                  f"{1000 * scrape[key + '_cpu']:>16.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
