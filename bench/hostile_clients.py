"""The collector under hostile clients: its peak memory, CPU and how long each class takes.

Run: ``python bench/hostile_clients.py [--connections 500] [--header-timeout 5]``

The real collector runs as a child process on loopback with ``limits.header_timeout`` set;
for each class of hostile client this prints the collector's resident memory before and at
its peak during the class (``VmHWM`` is reset between classes through
``/proc/PID/clear_refs``), its CPU time, the wall time of the class and what an ordinary
client saw meanwhile (the slowest of ``GET /healthz`` polled every 100 ms):

- slowloris: ``--connections`` connections sending a header line every half second until
  the server hangs up;
- silent: as many connections that send nothing at all;
- bad tokens, out-of-range dates and numbers: 200 requests each (answers 401/400);
- scrub worst case: 20 uploads of one 2 MB measurement whose text is nothing but address
  candidates, from a proxied (non-loopback) submitter, so that every string is scrubbed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.collector_process import CollectorProcess  # noqa: E402


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


async def slowloris(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: kuzot\r\n")
    index = 0
    try:
        while True:
            try:
                if not await asyncio.wait_for(reader.read(4096), 0.5):
                    return
            except TimeoutError:
                writer.write(f"X-Slow-{index}: {'x' * 20}\r\n".encode())
                index += 1
    except ConnectionError:
        return
    finally:
        writer.close()


async def silent(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.read()
    except ConnectionError:
        pass
    finally:
        writer.close()


def measurement(uid: str, **changes: Any) -> dict[str, Any]:
    return {"measurement_uid": uid, "probe_cc": "KZ", "probe_asn": "AS9198",
            "test_name": "web_connectivity",
            "measurement_start_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "input": "https://vlast.kz/", "test_keys": {"analysis": {"verdict": "ok"}},
            **changes}


async def requests(base: str, token: str, kind: str) -> None:
    async with aiohttp.ClientSession() as session:
        for index in range(200):
            if kind == "tokens":
                async with session.post(base + "/api/v1/measurements", data=b"{}",
                                        headers={"Authorization": "Bearer kz_\u00e9"
                                                 .encode().decode("latin-1")}) as response:
                    assert response.status == 401, response.status
            elif kind == "dates":
                async with session.get(base + "/api/v1/events",
                                       params={"since": "9999-12-31T23:59:59-01:00"}) as response:
                    assert response.status == 400, response.status
            else:
                body = json.dumps(measurement(f"bench-num-{index:05d}", test_keys={"x": 1}))
                async with session.post(base + "/api/v1/measurements",
                                        data=body.replace('"x": 1', '"x": 1e999999'),
                                        headers={"Authorization": f"Bearer {token}"}) as response:
                    assert response.status == 400, response.status


async def scrub_worst_case(base: str, token: str) -> None:
    text = " ".join(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256} 2024-05-01 a--b"
                    for i in range(60000))[:1_900_000]
    async with aiohttp.ClientSession() as session:
        for index in range(20):
            body = measurement(f"bench-scrub-{index:05d}",
                               test_keys={"analysis": {"verdict": "ok"}, "text": text})
            async with session.post(base + "/api/v1/measurements", json=body,
                                    headers={"Authorization": f"Bearer {token}",
                                             "X-Forwarded-For": "203.0.113.7"}) as response:
                assert response.status == 200, await response.text()


async def watch_health(base: str, stop: asyncio.Event) -> float:
    slowest = 0.0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            started = time.monotonic()
            async with session.get(base + "/healthz") as response:
                assert response.status == 200
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.1)
    return slowest


async def run_class(process: CollectorProcess, pid: int,
                    job: Callable[[], Awaitable[object]]) -> str:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before, _ = memory_kb(pid)
    cpu = cpu_seconds(pid)
    stop = asyncio.Event()
    health = asyncio.create_task(watch_health(process.base, stop))
    started = time.monotonic()
    await job()
    wall = time.monotonic() - started
    stop.set()
    slowest = await health
    _, peak = memory_kb(pid)
    return (f"{before / 1024:.0f} | {peak / 1024:.0f} | {cpu_seconds(pid) - cpu:.1f} | "
            f"{wall:.1f} | {slowest * 1000:.0f}")


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        process = CollectorProcess(
            Path(tmp), "client_address_header: X-Forwarded-For\n"
            f"limits: {{rate_per_minute: 100000000, header_timeout: {args.header_timeout}s}}\n"
            "detection: {enabled: false}\n")
        token = process.issue_token("bench")
        process.start()
        assert process.process is not None
        pid = process.process.pid
        try:
            port = process.port
            classes: dict[str, Callable[[], Awaitable[object]]] = {
                f"slowloris, {args.connections} connections": lambda: asyncio.gather(
                    *(slowloris(port) for _ in range(args.connections))),
                f"silent, {args.connections} connections": lambda: asyncio.gather(
                    *(silent(port) for _ in range(args.connections))),
                "bad tokens, 200 requests": lambda: requests(process.base, token, "tokens"),
                "out-of-range dates, 200 requests": lambda: requests(process.base, token,
                                                                     "dates"),
                "1e999999 in a measurement, 200": lambda: requests(process.base, token,
                                                                   "numbers"),
                "scrub worst case, 20 x 1.9 MB": lambda: scrub_worst_case(process.base,
                                                                          token),
            }
            print("| class | RSS before, MiB | peak RSS, MiB | collector CPU, s | wall, s | "
                  "slowest /healthz meanwhile, ms |")
            print("|---|---:|---:|---:|---:|---:|")
            for name, job in classes.items():
                print(f"| {name} | {await run_class(process, pid, job)} |", flush=True)
        finally:
            process.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--header-timeout", type=float, default=5.0)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
