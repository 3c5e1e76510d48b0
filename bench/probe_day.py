"""A volunteer's day on the full target lists: data used, coverage and CPU, with the pacing.

    sudo python bench/probe_day.py [--country KG|KZ] [--lists country|full]
                                   [--budget-mb 100] [--interval 1h] [--page-kb 250]

What runs: the real probe daemon (``probe.daemon.Daemon``) on the shipped lists as the loader
reads them (``--lists full``: the country's list and the full ``global.csv``, about 1,900
URLs for KG; ``country``: the country's list and ``curated/global.csv``, what ``probe init``
configures), with ``probe init``'s cadence (``--interval``, 1 h) and the default data budget
(``budget.daily_mb`` 100), through one whole UTC day on a clock that jumps
(``tests/helpers/virtual_clock.py``): every measurement, control fetch and upload is real, on
the loopback world of ``bench/probe_footprint.py`` (a private network namespace where every
listed host name is one address serving a ``--page-kb`` page; the real collector as control
vantage and upload target), only the waits between them take no time.

Every simulated hour it notes the day's data use as the daemon counts it against the budget
(``used_today``: measurements, control answers, uploads, heartbeats, list fetches), the
measurements made, and the daemon's CPU time (this process: the sites and the collector run in
their own processes). Prints the hours and a summary: data used against the budget, how much
of the list was measured (priority entries and the rotating tail apart), CPU per measurement
and per hour. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import trustme

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import local_collector  # noqa: E402
from bench.probe_footprint import (  # noqa: E402
    SITE_ADDRESS,
    TARGETS,
    serve,
    site_app,
)
from probe.config.probe_config import Target, load  # noqa: E402
from probe.daemon import pacing  # noqa: E402
from probe.local.spool import Entry  # noqa: E402
from tests.helpers.probe_setup import make_daemon  # noqa: E402
from tests.helpers.virtual_clock import VirtualClock  # noqa: E402

HOUR = 3600.0
START = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)  # a Monday with no event window


def list_files(country: str, lists: str) -> list[Path]:
    return [TARGETS / f"{country.lower()}.csv",
            TARGETS / ("global.csv" if lists == "full" else "curated/global.csv")]


@dataclass
class Hour:
    hour: int
    used: int
    measurements: int
    cpu: float


def run_sites(page_kb: int, cert: Path, key: Path) -> None:
    """The listed sites, in their own process so their CPU is not the daemon's."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def main() -> None:
        await serve(site_app(page_kb), 443, context)
        await serve(site_app(page_kb), 80, None)
        await asyncio.Event().wait()

    asyncio.run(main())


def write_config(work: Path, args: argparse.Namespace, collector: str, token: str,
                 ca_file: Path) -> Path:
    route = work / "route"
    route.write_text("Iface\tDestination\tGateway\n")
    config = {
        "identity": {"probe_id": "bench", "country": args.country, "asn": "AS8449"},
        "collector": {"url": collector, "token": token},
        "control_url": collector,
        "ca_file": str(ca_file),
        "timeouts": {"dns": 2, "connect": 3, "tls": 3, "http": 10, "control": 15},
        "schedule": {"interval": args.interval, "concurrency": 4},
        "budget": {"daily_mb": args.budget_mb},
        "target_sync": {"enabled": False},
        "spool_path": str(work / "spool.sqlite"),
        "target_files": [str(p) for p in list_files(args.country, args.lists)],
        "ladder": {"foreign": [f"{SITE_ADDRESS}:443"], "resolver_name": "localhost",
                   "route_file": str(route), "arp_file": str(route), "timeout": 1.0},
        "consent": {"accepted": True, "notice_version": 1},
    }
    path = work / "probe.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


async def measure(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="kuzot-day-"))
    ca = trustme.CA()
    ca_file = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    local = local_collector.prepare(work, ca_file)
    config_path = write_config(work, args, local.base, local.token, ca_file)
    config = load(config_path)
    hosts = sorted({urlsplit(t.url).hostname or "" for t in config.targets})
    leaf = ca.issue_cert(*hosts)
    cert, key = work / "site.pem", work / "site.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    sites = multiprocessing.get_context("fork").Process(
        target=run_sites, args=(args.page_kb, cert, key), daemon=True)
    sites.start()
    collector = local_collector.start(local)
    await local_collector.wait_for(local.port)
    clock = VirtualClock(START)
    daemon, db, spool = await make_daemon(config, work, clock=clock)
    clock.settle = daemon.settle
    stop = asyncio.Event()
    hours: list[Hour] = []
    began = time.monotonic()

    def web_count() -> int:
        return sum(1 for e in spool.recorded if e.test_name == "web_connectivity")

    def note(hour: int) -> None:
        hours.append(Hour(hour, daemon.used_today, web_count(), time.process_time()))

    async def mark(hour: int) -> None:
        note(hour)

    for hour in range(1, 24):
        clock.at(hour * HOUR - 31, functools.partial(mark, hour))

    async def finish() -> None:
        note(24)
        stop.set()

    clock.at(24 * HOUR - 60, finish)
    cpu0 = time.process_time()
    hours.append(Hour(0, 0, 0, cpu0))
    try:
        await daemon.run(stop)
    finally:
        await db.close()
        local_collector.stop(collector)
        sites.kill()
    report(args, config.targets, spool.recorded, hours, daemon.skipped_pace,
           time.monotonic() - began)
    shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, listed: tuple[Target, ...], recorded: list[Entry],
           hours: list[Hour], skipped: int, wall: float) -> None:
    priority = {t.url for t in listed if pacing.is_priority(t, args.country, False)}
    measured: dict[str, int] = {}
    for entry in recorded:
        if entry.test_name == "web_connectivity" and entry.input:
            measured[entry.input] = measured.get(entry.input, 0) + 1
    budget = args.budget_mb * 1e6
    print(f"a day of the probe: {len(listed)} targets ({args.country}, lists {args.lists}: "
          f"{len(priority)} priority, {len(listed) - len(priority)} tail), cadence "
          f"{args.interval}, budget {args.budget_mb:g} MB, page {args.page_kb} KB; "
          f"{wall:.0f} s of real time")
    print()
    print(f"{'hour (UTC)':<12}{'data MB':>9}{'% budget':>10}{'even %':>8}"
          f"{'measurements':>14}{'CPU s':>8}")
    for before, after in zip(hours, hours[1:], strict=False):
        print(f"{before.hour:02d}-{after.hour:02d}{'':<7}{(after.used - before.used) / 1e6:>9.1f}"
              f"{after.used / budget * 100:>10.0f}{after.hour / 24 * 100:>8.0f}"
              f"{after.measurements - before.measurements:>14}{after.cpu - before.cpu:>8.1f}")
    last = hours[-1]
    total = last.measurements
    cpu = last.cpu - hours[0].cpu
    covered_priority = len(priority & set(measured))
    tail = {t.url for t in listed} - priority
    covered_tail = len(tail & set(measured))
    per_hour = sorted(b.cpu - a.cpu for a, b in zip(hours, hours[1:], strict=False))
    print()
    print(f"data used: {last.used / 1e6:.1f} MB of {args.budget_mb:g} MB "
          f"({last.used / budget * 100:.0f} %)")
    print(f"measurements: {total}; distinct URLs {len(measured)} of {len(listed)} "
          f"({len(measured) / len(listed) * 100:.0f} %): priority {covered_priority} of "
          f"{len(priority)}, tail {covered_tail} of {len(tail)}; deferred for the pace "
          f"{skipped} times")
    print(f"CPU: {cpu:.1f} s in the day, {cpu * 1000 / max(total, 1):.0f} ms per "
          f"measurement, per hour median {per_hour[len(per_hour) // 2]:.1f} s, "
          f"max {per_hour[-1]:.1f} s")


def enter_namespace(argv: list[str]) -> None:
    os.execvp("unshare", ["unshare", "--net", "--mount", "--fork", sys.executable,
                          str(Path(__file__).resolve()), "--inside", *argv])


def prepare_namespace(args: argparse.Namespace) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "address", "add", f"{SITE_ADDRESS}/32", "dev", "lo"], check=True)
    hosts: set[str] = set()
    for path in list_files(args.country, args.lists):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            if line and not line.startswith("#"):
                hosts.add(urlsplit(line.split(",", 1)[0]).hostname or "")
    files = Path(tempfile.mkdtemp(prefix="kuzot-day-etc-"))
    (files / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n"
                                 + "".join(f"{SITE_ADDRESS} {h}\n" for h in sorted(hosts) if h))
    (files / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    for name in ("hosts", "resolv.conf"):
        subprocess.run(["mount", "--bind", str(files / name), f"/etc/{name}"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--country", default="KG", choices=["KG", "KZ"])
    parser.add_argument("--lists", default="full", choices=["country", "full"])
    parser.add_argument("--budget-mb", type=float, default=100.0)
    parser.add_argument("--interval", default="1h", help="schedule.interval (probe init: 1h)")
    parser.add_argument("--page-kb", type=int, default=250)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        prepare_namespace(args)
        asyncio.run(measure(args))
        return 0
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("needs root and unshare(1): the sites live in a private network namespace",
              file=sys.stderr)
        return 2
    enter_namespace(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
