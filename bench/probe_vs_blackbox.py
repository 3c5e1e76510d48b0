"""Kuzot's probe beside Prometheus' blackbox_exporter on the same 100 local HTTPS targets.

Run: ``python bench/probe_vs_blackbox.py [--targets 100] [--concurrency 8]``
(needs the Debian package prometheus-blackbox-exporter).

Everything listens on loopback. The targets run in their own process (their CPU is not
counted); blackbox_exporter runs as its own process and is driven through ``/probe`` the way
Prometheus drives it; each Kuzot mode runs in a fresh child process so its CPU time and peak
RSS are its own. Printed: wall time, CPU seconds per target, peak RSS, success rate, ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peak import peak_rss_mb  # noqa: E402
from tests.helpers.ports import free_port  # noqa: E402


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the targets -------------------------------------------------------------------------


async def serve_targets(count: int, cert_dir: Path, ports_file: Path) -> None:
    import ssl

    from aiohttp import web

    body = "<html><head><title>Local target</title></head><body>" + "x" * 20000 + "</body>"

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_dir / "server.pem")
    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(count):
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        ports.append(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    ports_file.write_text(json.dumps(ports))
    await asyncio.Event().wait()


# --- Kuzot in a child process ------------------------------------------------------------


async def run_kuzot(mode: str, urls: list[str], ca_file: str, control: str,
                    concurrency: int) -> dict[str, Any]:
    from probe.nettests.control_client import ControlClient
    from probe.nettests.http_get import http_get
    from probe.nettests.web_connectivity import measure as web
    from probe.nettests.web_connectivity.run import run_web_connectivity

    semaphore = asyncio.Semaphore(concurrency)
    options = web.WebOptions(ca_file=ca_file, connect_timeout=5, tls_timeout=5, http_timeout=10)
    client = ControlClient(control)
    successes = 0

    async def one(url: str) -> None:
        nonlocal successes
        async with semaphore:
            if mode == "http":
                result = await http_get(url, 10.0, ca_file)
                successes += bool(result["success"])
            else:
                m = await run_web_connectivity(url, options, client)
                successes += m["test_keys"]["analysis"]["verdict"] == "ok"

    start = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.gather(*(one(u) for u in urls))
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu0,
            "peak_rss_mb": peak_rss_mb(),
            "success": successes / len(urls)}


def kuzot_child(mode: str, urls_file: Path, ca_file: str, control: str,
                concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "kuzot", mode, str(urls_file), ca_file, control,
         str(concurrency)], check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- blackbox_exporter -------------------------------------------------------------------


async def drive_blackbox(port: int, urls: list[str], concurrency: int) -> tuple[float, float]:
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        nonlocal ok
        async with semaphore:
            async with session.get(f"http://127.0.0.1:{port}/probe",
                                   params={"module": "https_local", "target": url}) as r:
                ok += "probe_success 1" in await r.text()

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, u) for u in urls))
    return time.perf_counter() - start, ok / len(urls)


def wait_port(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    exporter = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if exporter is None:
        print("prometheus-blackbox-exporter is not installed (apt-get install "
              "prometheus-blackbox-exporter)", file=sys.stderr)
        return 2
    import trustme

    children: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
        ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(
            str(tmp / "server.pem"))
        try:
            ports_file = tmp / "ports.json"
            children.append(subprocess.Popen([sys.executable, __file__, "serve",
                                              str(args.targets), tmp_name, str(ports_file)],
                                             cwd=ROOT))
            while not ports_file.exists():
                time.sleep(0.1)
            urls = [f"https://localhost:{p}/" for p in json.loads(ports_file.read_text())]
            urls_file = tmp / "urls.json"
            urls_file.write_text(json.dumps(urls))

            collector_port = free_port()
            (tmp / "collector.yaml").write_text(
                f"listen: 127.0.0.1:{collector_port}\ndatabase: {tmp}/c.sqlite\n"
                f"control: {{allow_private_addresses: true, ca_file: {tmp}/ca.pem}}\n"
                f"limits: {{rate_per_minute: 100000}}\n")
            children.append(subprocess.Popen(
                [sys.executable, "-m", "collector", "serve", "--config",
                 str(tmp / "collector.yaml")], cwd=ROOT, stdout=subprocess.DEVNULL))

            bb_port = free_port()
            (tmp / "blackbox.yml").write_text(
                "modules:\n  https_local:\n    prober: http\n    timeout: 10s\n    http:\n"
                f"      preferred_ip_protocol: ip4\n      tls_config:\n"
                f"        ca_file: {tmp}/ca.pem\n")
            blackbox = subprocess.Popen(
                [exporter, f"--config.file={tmp}/blackbox.yml",
                 f"--web.listen-address=127.0.0.1:{bb_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            children.append(blackbox)
            wait_port(bb_port)
            wait_port(collector_port)

            cpu0 = proc_cpu_seconds(blackbox.pid)
            bb_wall, bb_success = asyncio.run(drive_blackbox(bb_port, urls, args.concurrency))
            bb = {"wall": bb_wall, "cpu": proc_cpu_seconds(blackbox.pid) - cpu0,
                  "peak_rss_mb": proc_peak_rss_mb(blackbox.pid), "success": bb_success}
            control = f"http://127.0.0.1:{collector_port}"
            http_only = kuzot_child("http", urls_file, f"{tmp}/ca.pem", control,
                                    args.concurrency)
            full = kuzot_child("full", urls_file, f"{tmp}/ca.pem", control, args.concurrency)
        finally:
            for child in children:
                child.terminate()
                child.wait(timeout=10)

    n = len(urls)
    rows = [("blackbox_exporter http", bb), ("kuzot http-only", http_only),
            ("kuzot full web check", full)]
    print(f"{n} local HTTPS targets, concurrency {args.concurrency}, {os.cpu_count()} CPUs")
    print(f"{'runner':<24} {'wall s':>8} {'CPU ms/target':>14} {'peak RSS MB':>12} "
          f"{'success':>8}")
    for name, r in rows:
        print(f"{name:<24} {r['wall']:>8.2f} {1000 * r['cpu'] / n:>14.2f} "
              f"{r['peak_rss_mb']:>12.1f} {r['success']:>8.0%}")
    print(f"ratio CPU/target http-only / blackbox: {http_only['cpu'] / max(bb['cpu'], 1e-9):.2f}x"
          " (goal <= 2x)")
    print(f"full web check wall for {n} targets: {full['wall']:.1f} s (goal < 30 s); "
          f"full-check probe peak RSS {full['peak_rss_mb']:.1f} MB (goal < 60 MB)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve_targets(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "kuzot":
        result = asyncio.run(run_kuzot(sys.argv[2], json.loads(Path(sys.argv[3]).read_text()),
                                       sys.argv[4], sys.argv[5], int(sys.argv[6])))
        print(json.dumps(result))
    else:
        raise SystemExit(main())
