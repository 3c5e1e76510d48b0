"""Footprint of the probe daemon: resident memory and CPU per round of the shipped target list.

    sudo python bench/probe_footprint.py [--country KG|KZ|all] [--rounds 3] [--round 40]
                                         [--platforms]

What runs: the real daemon (``python -m probe run``) as its own process, on the shipped
target lists ``probe init`` copies (``configs/targets``: the country's list and the curated
global one; ``--country all``: every list, the full global one included), with the Raspberry Pi
settings ``probe init`` writes (concurrency 4). Every URL is measured every round, whatever its
own ``interval`` in the list. Needs root: the script re-runs itself inside a new network and mount
namespace (``unshare``) where only ``lo`` exists, gives ``lo`` one public-looking address
(``SITE_ADDRESS``: answers in loopback or special-purpose ranges are bogons to the probe, which
then fetches nothing) and a private ``/etc/hosts`` that maps every shipped hostname to it. One
HTTPS server with a test CA (and a plain HTTP one on port 80 for the ``http://`` URLs) answers
for all of them with a page of ``--page-kb`` KB; the real
collector runs in the same namespace as the control vantage and upload target. Nothing can
leave the namespace: it has no other interface and no route. With ``--platforms`` the daemon
also checks every platform of the shipped ``configs/platforms.yaml`` once a round, with its
host names in the private hosts file and its addresses replaced by ``SITE_ADDRESS`` (ports
other than 443 are closed there and answer with a reset).

Samples ``/proc/<pid>/status`` (VmRSS, VmHWM) and ``/proc/<pid>/stat`` (utime + stime) of the
daemon every 0.2 s. A round is one ``--round`` seconds interval in which every target is
measured once. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import trustme
import yaml
from aiohttp import web

from collector.store.body import unpack

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import local_collector  # noqa: E402

TARGETS = REPO / "configs" / "targets"
PLATFORMS = REPO / "configs" / "platforms.yaml"
TICKS = os.sysconf("SC_CLK_TCK")
SITE_ADDRESS = "46.36.210.10"  # only ever exists inside the benchmark's own namespace


def shipped_urls(country: str) -> list[str]:
    """The URLs of the lists ``probe init`` copies for ``country`` (or of every list), once."""
    names = ["kg.csv", "kz.csv", "global.csv"] if country == "all" else \
        [f"{country.lower()}.csv", "curated/global.csv"]
    urls: dict[str, None] = {}
    for name in names:
        with open(TARGETS / name, encoding="utf-8") as handle:
            rows = csv.DictReader(line for line in handle if not line.startswith("#"))
            urls.update((row["url"], None) for row in rows)
    return list(urls)


def platform_hosts() -> list[str]:
    """Every host name the shipped platform checks connect to."""
    data = yaml.safe_load(PLATFORMS.read_text(encoding="utf-8"))
    hosts = set()
    for platform in data["platforms"].values():
        for group in platform["groups"].values():
            hosts.update(urlsplit(u).hostname or "" for u in group.get("urls") or [])
            hosts.update(group.get("hosts") or [])
    return sorted(hosts)


def write_platforms(work: Path) -> Path:
    """The shipped platforms file with every address replaced by ``SITE_ADDRESS``."""
    data = yaml.safe_load(PLATFORMS.read_text(encoding="utf-8"))
    for platform in data["platforms"].values():
        for group in platform["groups"].values():
            if group.get("addresses"):
                group["addresses"] = [SITE_ADDRESS]
            group.pop("networks", None)  # the bench's address is in none of them
    path = work / "platforms.yaml"
    path.write_text(json.dumps(data))
    return path


@dataclass
class Sample:
    at: float
    cpu: float
    rss: int
    hwm: int


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    enqueued: list[tuple[float, int]] = field(default_factory=list)


def read_process(pid: int) -> tuple[float, int, int]:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return cpu, rss, hwm


def enqueued(spool: Path) -> int:
    try:
        with sqlite3.connect(f"file:{spool}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'enqueued'").fetchone()
            return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0


def site_app(page_kb: int) -> web.Application:
    body = ("<html><head><title>A news site</title></head><body>"
            + "<p>" + "news " * (page_kb * 1024 // 5) + "</p></body></html>")

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


async def serve(app: web.Application, port: int, context: ssl.SSLContext | None
                ) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, SITE_ADDRESS, port, ssl_context=context).start()
    return runner


def write_probe_config(work: Path, urls: list[str], collector: str, token_file: Path,
                       ca_file: Path, site_port: int, round_seconds: float,
                       platforms: bool) -> Path:
    route = work / "route"
    route.write_text("Iface\tDestination\tGateway\n")
    targets = work / "targets.csv"
    targets.write_text("url,category,cc,role,baseline\n" + "".join(f"{u},BENCH,*,test,\n"
                                                                 for u in urls))
    config = {
        "identity": {"probe_id": "bench", "country": "KG"},
        "collector": {"url": collector, "token_file": str(token_file),
                      "ca_file": str(ca_file)},
        "control_url": collector,
        "ca_file": str(ca_file),
        "timeouts": {"dns": 2, "connect": 3, "tls": 3, "http": 10, "control": 15},
        "schedule": {"interval": round_seconds, "jitter": 0.0, "concurrency": 4,
                     "upload_interval": 10},
        "budget": {"daily_mb": None},
        "spool_path": str(work / "spool.sqlite"),
        "target_files": [str(targets)],
        "ladder": {"foreign": [f"{SITE_ADDRESS}:{site_port}"], "resolver_name": "localhost",
                   "route_file": str(route), "arp_file": str(route), "timeout": 1.0},
        "consent": {"accepted": True, "notice_version": 1},
    }
    if platforms:
        config["platforms"] = {"file": str(write_platforms(work)), "interval": round_seconds}
    path = work / "probe.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


async def measure(args: argparse.Namespace) -> None:
    urls = shipped_urls(args.country)
    work = Path(tempfile.mkdtemp(prefix="kuzot-bench-"))
    ca = trustme.CA()
    ca_file = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    hosts = sorted({urlsplit(u).hostname or "" for u in urls}
                   | set(platform_hosts() if args.platforms else []))
    site_port = 443
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(context)
    local = local_collector.prepare(work, ca_file)
    token_file = work / "token"
    token_file.write_text(local.token)
    probe_config = write_probe_config(work, urls, local.base, token_file, ca_file,
                                      site_port, args.round, args.platforms)
    site = await serve(site_app(args.page_kb), site_port, context)
    plain_site = await serve(site_app(args.page_kb), 80, None)
    collector = local_collector.start(local)
    await asyncio.sleep(2.0)
    started = time.monotonic()
    daemon = subprocess.Popen([sys.executable, "-m", "probe", "run", "--config",
                               str(probe_config)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    run = Run()
    duration = args.round * args.rounds + 3
    try:
        while time.monotonic() - started < duration and daemon.poll() is None:
            cpu, rss, hwm = read_process(daemon.pid)
            now = time.monotonic() - started
            run.samples.append(Sample(now, cpu, rss, hwm))
            run.enqueued.append((now, enqueued(work / "spool.sqlite")))
            await asyncio.sleep(0.2)
    finally:
        stop_at = time.monotonic()
        daemon.terminate()
        _, err = daemon.communicate(timeout=40)
        stop_seconds = time.monotonic() - stop_at
        local_collector.stop(collector)
        await site.cleanup()
        await plain_site.cleanup()
    with sqlite3.connect(local.database) as db:
        stored, stored_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM measurements").fetchone()
        verdicts = dict(db.execute("SELECT verdict, count(*) FROM measurements "
                                   "WHERE test_name = 'web_connectivity' GROUP BY verdict"))
        tests = dict(db.execute("SELECT test_name, count(*) FROM measurements "
                                "GROUP BY test_name"))
        sample = db.execute("SELECT body FROM measurements WHERE test_name = "
                            "'web_connectivity' AND verdict != 'ok' LIMIT 1").fetchone()
    if sample:  # the first measurement that was not ok, to see why at a glance
        keys = json.loads(unpack(sample[0]))["test_keys"]
        print("not ok, e.g.:", json.dumps({k: keys.get(k) for k in (
            "dns_experiment_failure", "http_experiment_failure", "control_failure")}),
            json.dumps(keys.get("analysis"))[:300])
    with sqlite3.connect(work / "spool.sqlite") as db:
        used = sum(row[0] for row in db.execute("SELECT bytes FROM usage"))
    report(args, len(urls), run, stop_seconds, int(stored), int(stored_bytes),
           verdicts, used, err.decode(), tests)
    shutil.rmtree(work, ignore_errors=True)


def at(samples: list[Sample], moment: float) -> Sample:
    return min(samples, key=lambda s: abs(s.at - moment))


def count_at(points: list[tuple[float, int]], moment: float) -> int:
    return min(points, key=lambda p: abs(p[0] - moment))[1]


def report(args: argparse.Namespace, targets: int, run: Run,
           stop_seconds: float, stored: int, stored_bytes: int, verdicts: dict[str, int],
           used: int, log: str, tests: dict[str, int]) -> None:
    samples = run.samples
    extra = " and the 8 shipped platform checks" if args.platforms else ""
    print(f"probe daemon footprint: {targets} shipped targets ({args.country}){extra}, served "
          "in a private network namespace")
    print(f"page {args.page_kb} KB, concurrency 4, one round = {args.round:.0f} s, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    first = next((s for s in samples if s.cpu > 0), samples[0])
    startup = at(samples, 1.5)
    print(f"{'phase':<22}{'measurements':>14}{'CPU s':>9}{'CPU ms/measurement':>20}"
          f"{'RSS MB (end)':>14}{'peak RSS MB':>13}")
    print("-" * 92)
    print(f"{'start-up (1.5 s)':<22}{count_at(run.enqueued, 1.5):>14}{startup.cpu:>9.2f}"
          f"{'':>20}{startup.rss / 1e6:>14.1f}{startup.hwm / 1e6:>13.1f}")
    for index in range(args.rounds):
        begin, end = index * args.round, (index + 1) * args.round
        a, b = at(samples, begin or first.at), at(samples, end)
        done = count_at(run.enqueued, end) - count_at(run.enqueued, begin)
        per = (b.cpu - a.cpu) * 1000 / done if done else float("nan")
        print(f"{'round ' + str(index + 1):<22}{done:>14}{b.cpu - a.cpu:>9.2f}{per:>20.1f}"
              f"{b.rss / 1e6:>14.1f}{b.hwm / 1e6:>13.1f}")
    last = samples[-1]
    print("-" * 92)
    print(f"{'whole run':<22}{count_at(run.enqueued, last.at):>14}{last.cpu:>9.2f}{'':>20}"
          f"{last.rss / 1e6:>14.1f}{max(s.hwm for s in samples) / 1e6:>13.1f}")
    print()
    print(f"stored at the collector: {stored} measurements, {stored_bytes / stored / 1e3:.1f} "
          f"KB each (JSON); verdicts {verdicts}" if stored else "stored: none")
    print(f"measurements by test: {tests}")
    print(f"data used (probe's estimate): {used / 1e6:.2f} MB; SIGTERM to exit: "
          f"{stop_seconds:.2f} s")
    for line in log.splitlines():
        if "stopping:" in line:
            print("daemon:", line.split(": ", 1)[-1])
    errors = [line for line in log.splitlines() if " ERROR " in line]
    if errors:
        print(f"daemon errors: {len(errors)}; first: {errors[0]}")


def enter_namespace(args: argparse.Namespace) -> None:
    """Re-run this script in a fresh network + mount namespace with private hosts files."""
    os.execvp("unshare", ["unshare", "--net", "--mount", "--fork", sys.executable,
                          str(Path(__file__).resolve()), "--inside", "--country", args.country,
                          "--rounds", str(args.rounds), "--round", str(args.round),
                          "--page-kb", str(args.page_kb),
                          *(["--platforms"] if args.platforms else [])])


def prepare_namespace(country: str, platforms: bool) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "address", "add", f"{SITE_ADDRESS}/32", "dev", "lo"], check=True)
    hosts = sorted({urlsplit(u).hostname or "" for u in shipped_urls(country)}
                   | set(platform_hosts() if platforms else []))
    files = Path(tempfile.mkdtemp(prefix="kuzot-bench-etc-"))
    (files / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n"
                                 + "".join(f"{SITE_ADDRESS} {h}\n" for h in hosts))
    # Any name not listed goes to a resolver on loopback that does not exist: fails fast.
    (files / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    for name in ("hosts", "resolv.conf"):
        subprocess.run(["mount", "--bind", str(files / name), f"/etc/{name}"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--country", default="KG", choices=["KG", "KZ", "all"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round", type=float, default=40.0, help="seconds per round")
    parser.add_argument("--page-kb", type=int, default=250)
    parser.add_argument("--platforms", action="store_true",
                        help="also run the shipped platform checks once a round")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        prepare_namespace(args.country, args.platforms)
        asyncio.run(measure(args))
        return 0
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("needs root and unshare(1): the sites live in a private network namespace",
              file=sys.stderr)
        return 2
    enter_namespace(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
