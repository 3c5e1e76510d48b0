"""Peak memory, time and document size of one ``probe check`` per class of hostile server,
and of the collector's control vantage serving the same classes.

    python -m bench.hostile_memory [--runs 3]

(from the repository root: the hostile servers are the test suite's, ``tests/probe/hostile``).
Each check is its own process (``python -m probe check URL --json``) against a loopback
server; its peak RSS is the kernel's ``ru_maxrss`` of that process. The control rows run the
real collector (``python -m collector serve``) and read its ``VmHWM`` from ``/proc`` after each
class. Prints Markdown tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import trustme

from tests.helpers import hostile_servers as servers
from tests.helpers.collector_process import serve as serve_collector
from tests.helpers.servers import server_context
from tests.probe.hostile.run import run_check

MiB = 1024 * 1024


def _classes(ca_file: str, ca: trustme.CA) -> list[tuple[str, Callable[[], Any], tuple[str, ...]]]:
    """(name, server factory returning an async context manager of Served, extra CLI args)."""
    tls = server_context(ca, "127.0.0.1")

    def http(writer: servers.Writer) -> Callable[[], AbstractAsyncContextManager[servers.Served]]:
        return lambda: servers.serve(writer)

    return [
        ("ordinary page (baseline)", http(servers.page(b"hello")), ()),
        ("endless header lines", http(servers.endless_header_lines()), ()),
        ("one endless header line", http(servers.endless_header_line()), ()),
        ("1 MB header", http(servers.big_header()), ()),
        ("100,000 headers", http(servers.many_headers(100_000)), ()),
        ("20,000 headers (under the byte limit)", http(servers.many_headers(20_000)), ()),
        ("65,000 four-byte headers (the most the byte limit lets through)",
         http(servers.minimal_headers(65_000)), ()),
        ("chunk size 0xFFFFFFFFFFFFFFFF", http(servers.huge_chunk()), ()),
        ("chunk size of 41 hex digits", http(servers.long_chunk_size()), ()),
        ("Location: http://[::1/evil", http(servers.redirect(b"http://[::1/evil")), ()),
        ("Location: http://host:99999/", http(servers.redirect(b"http://host:99999/")), ()),
        ("TLS, then endless header lines",
         lambda: servers.serve(servers.endless_header_lines(), context=tls),
         ("--ca-file", ca_file)),
        ("TLS: garbage for a ServerHello",
         lambda: servers.serve(servers.garbage(), read_request=False), ()),
    ]


def _outcome(keys: dict[str, Any]) -> str:
    requests = keys["requests"]
    if requests:
        request = requests[0]
        if request["failure"]:
            return str(request["failure"])
        if request["response"]["body_is_truncated"]:
            return "(none: body snapshot cut at 512 KiB)"
        return "(none)"
    for handshake in keys["tls_handshakes"]:
        if handshake["failure"]:
            return f"{handshake['failure']} (tls)"
    return "?"


async def probe_rows(runs: int, ca_file: str, ca: trustme.CA) -> list[str]:
    rows = []
    for name, factory, extra in _classes(ca_file, ca):
        peaks, walls, sizes, outcome = [], [], [], ""
        for _ in range(runs):
            async with factory() as served:
                scheme = "https" if "TLS" in name else "http"
                checked = await run_check(served.url(scheme), *extra)
            peaks.append(checked.peak_rss_bytes / MiB)
            walls.append(checked.seconds)
            sizes.append(len(checked.stdout) / 1024)
            outcome = _outcome(checked.keys)
        rows.append(f"| {name} | {max(peaks):.1f} | {statistics.median(walls):.2f} | "
                    f"{max(sizes):.0f} | `{outcome}` |")
    peaks, walls, sizes = [], [], []
    late = kept = 0
    for _ in range(runs):
        async with servers.serve(servers.page(b"flooded")) as site:
            with servers.FloodingDNS("127.0.0.1", seconds=1.5) as resolver:
                checked = await run_check(f"http://flood.example:{site.port}/",
                                          "--resolver", f"127.0.0.1:{resolver.port}")
        peaks.append(checked.peak_rss_bytes / MiB)
        walls.append(checked.seconds)
        sizes.append(len(checked.stdout) / 1024)
        udp = [q for q in checked.keys["queries"] if q["engine"] == "udp"]
        late = sum(q["x_late_answers_total"] for q in udp)
        kept = sum(len(q["x_late_answers"]) for q in udp)
    rows.append(f"| DNS: late-answer flood (last run: {late} late answers, {kept} kept) | "
                f"{max(peaks):.1f} | {statistics.median(walls):.2f} | {max(sizes):.0f} | "
                "`x_late_answers_dropped` |")
    return rows


def _vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def control_rows(ca_file: str, ca: trustme.CA) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "collector.yaml"
        config.write_text(f"database: {Path(tmp) / 'kuzot.sqlite'}\n"
                          f"control:\n  allow_private_addresses: true\n  timeout: 6s\n"
                          f"  ca_file: {ca_file}\n")
        async with serve_collector("--config", str(config)) as collector, \
                aiohttp.ClientSession() as session:
            pid = collector.process.pid
            rows.append(f"| (collector at start) | {_vm(pid, 'VmHWM'):.1f} | | |")
            for name, factory, _extra in _classes(ca_file, ca):
                async with factory() as served:
                    scheme = "https" if "TLS" in name else "http"
                    body = {"http_request": served.url(scheme), "tcp_connect": []}
                    async with session.post(collector.base + "/api/v1/control",
                                            json=body) as response:
                        status = response.status
                        view = await response.json()
                failure = view["http_request"]["failure"] if status == 200 else view["error"]
                rows.append(f"| {name} | {_vm(pid, 'VmHWM'):.1f} | {status} | `{failure}` |")
            # A burst: twice control.max_concurrent (8 by default) at once, each the class
            # that keeps the most (a 512 KiB body snapshot); those beyond the limit get 503.
            async with servers.serve(servers.huge_chunk()) as served:
                body = {"http_request": served.url(), "tcp_connect": []}

                async def one() -> int:
                    async with session.post(collector.base + "/api/v1/control",
                                            json=body) as response:
                        await response.read()
                        return response.status

                statuses = await asyncio.gather(*(one() for _ in range(16)))
            counts = ", ".join(f"{statuses.count(s)} x {s}" for s in sorted(set(statuses)))
            rows.append(f"| 16 at once: chunk size 0xFFFFFFFFFFFFFFFF | "
                        f"{_vm(pid, 'VmHWM'):.1f} | {counts} | |")
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ca = trustme.CA()
    with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
        ca.cert_pem.write_to_path(pem.name)
        print(f"probe check, {args.runs} runs per class (peak RSS: the largest; wall: median)\n")
        print("| class | peak RSS MiB | wall s | JSON KiB | failure recorded |")
        print("|---|---:|---:|---:|---|")
        for row in await probe_rows(args.runs, pem.name, ca):
            print(row)
        print("\ncontrol vantage (one collector process, classes in order)\n")
        print("| class | collector VmHWM MiB after | status | http_request.failure |")
        print("|---|---:|---:|---|")
        for row in await control_rows(pem.name, ca):
            print(row)
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
