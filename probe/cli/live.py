"""The quickstart's main job: a local collector, the probe, and a live table in the terminal.

Starts ``python -m collector serve`` as a child process on the shipped config (SQLite under
``./var/``), issues the local probe a token, then runs rounds: the connectivity ladder first
(an offline machine is told as such, not reported as censorship), then every target that is
due, showing progress while a round runs and the latest verdicts after. A target is due in the
first round and then once its own ``interval`` (Citizen Lab's entries in the shipped lists: a
day) or ``schedule.interval`` has passed, as in the daemon. Ctrl-C stops both cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from probe.config import probe_config
from probe.daemon.uploader import Uploader, UploadError
from probe.nettests.runner import ladder_measurement, run_targets

CLEAR = "\x1b[H\x1b[2J"


# Verdicts a reader wants to see first when the table does not fit the terminal.
_FIRST = {"blocked": 0, "throttled": 1, "inconclusive": 2, "down": 3, "ok": 4}


def render(rows: dict[str, dict[str, Any]], status: str, progress: str, links: str,
           width: int | None = None, height: int | None = None) -> str:
    """The whole screen as text: a pure function so it can be tested.

    Given the terminal's ``width`` and ``height`` the screen fits it: the target column
    shrinks to the width, a line counts the verdicts, and when the rows do not all fit, the
    blocked, throttled and inconclusive targets come first and a last line says how many
    are not shown (the shipped lists hold some two hundred targets; a terminal, forty lines).
    Without them (output to a file or a pipe) every row is printed."""
    url_width = 42 if width is None else max(16, min(60, width - 50))
    rule = 50 + url_width
    link_lines = [links] if width is None or len(links) <= width else \
        [part for part in links.split("   ") if part]
    lines = ["Kuzot - live view (Ctrl-C to stop)", *link_lines, f"network: {status}", progress]
    counts: dict[str, int] = {}
    for row in rows.values():
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    lines.append("  ".join(f"{verdict} {counts[verdict]}" for verdict in
                           sorted(counts, key=lambda v: (_FIRST.get(v, 5), v))))
    lines.append(f"{'target':<{url_width}} {'verdict':<13} {'layer':<6} {'mechanism':<12} "
                 "measured")
    lines.append("-" * (rule if width is None else min(rule, width)))
    order = sorted(rows)
    room = None if height is None else max(1, height - len(lines) - 1)
    if room is not None and len(order) > room:
        order = sorted(rows, key=lambda url: (_FIRST.get(rows[url]["verdict"], 5), url))
        hidden = len(order) - (room - 1)
        order = order[:room - 1]
    else:
        hidden = 0
    for url in order:
        row = rows[url]
        lines.append(f"{url[:url_width]:<{url_width}} {row['verdict']:<13} "
                     f"{row['layer'] or '-':<6} {row['mechanism'] or '-':<12} {row['time']}")
    if hidden:
        lines.append(f"... {hidden} more not shown (a taller window shows more; the status "
                     "page lists every result)")
    if not rows:
        lines.append("(no results yet)")
    if width is not None:
        lines = [line[:width] for line in lines]
    return "\n".join(lines)


def due(targets: Iterable[probe_config.Target], last: dict[str, float], now: float,
        default_interval: float) -> tuple[probe_config.Target, ...]:
    """The targets to measure in a round at ``now``: never measured (``last`` has no entry),
    or measured at least their own interval (else ``default_interval``) ago."""
    return tuple(t for t in targets if t.url not in last
                 or now - last[t.url] >= (t.interval or default_interval))


def _row(measurement: dict[str, Any]) -> dict[str, Any]:
    analysis = measurement["test_keys"].get("analysis") or {}
    return {"verdict": analysis.get("verdict", "?"), "layer": analysis.get("layer"),
            "mechanism": analysis.get("mechanism"),
            "time": measurement["measurement_start_time"][11:]}


@contextlib.contextmanager
def collector_process(config_path: str, listen: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--config",
                                config_path], stdout=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def issue_token(config_path: str, probe_id: str) -> str:
    out = subprocess.run([sys.executable, "-m", "collector", "token", "issue", "--probe-id",
                          probe_id, "--config", config_path], check=True, capture_output=True,
                         text=True)
    return out.stdout.strip()


async def _wait_healthy(base: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"collector did not start at {base}")
            await asyncio.sleep(0.2)


async def _loop(config: probe_config.ProbeConfig, token: str | None, links: str) -> None:
    uploader = Uploader(config.collector.url, token, config.collector.ca_file)
    rows: dict[str, dict[str, Any]] = {}
    tty = sys.stdout.isatty()
    status = "checking connectivity..."

    def show(progress: str) -> None:
        size = shutil.get_terminal_size() if tty else None
        screen = render(rows, status, progress, links, size.columns if size else None,
                        size.lines if size else None)
        print((CLEAR + screen) if tty else screen + "\n", flush=True)

    pending: list[dict[str, Any]] = []
    last: dict[str, float] = {}
    while True:
        show("round starting")
        ladder, online, status = await ladder_measurement(config)
        pending.append(ladder)
        if online:
            def progress(done: int, total: int, measurement: dict[str, Any]) -> None:
                rows[measurement["input"]] = _row(measurement)
                show(f"round: {done}/{total} targets measured")

            started = time.monotonic()
            targets = due(config.targets, last, started, config.schedule.interval)
            pending.extend(await run_targets(config, targets, progress))
            last.update((t.url, started) for t in targets)
        try:
            stored = set(await uploader.upload(pending)) if pending else set()
            pending = [m for m in pending if m["measurement_uid"] not in stored]
            upload = f"uploaded {len(stored)}"
        except UploadError as exc:
            upload = f"upload failed ({exc}); {len(pending)} waiting"
        show(f"round done, {upload}; next in {config.schedule.interval:.0f}s")
        await asyncio.sleep(config.schedule.interval)


def run_live(probe_path: str, collector_path: str, start_collector: bool = True) -> int:
    # The collector's configuration is read only here: loaded at the top of the module it
    # would slow the start of every probe command, since the command line imports them all.
    from collector import config as collector_config

    probe_cfg = probe_config.load(probe_path)
    collector_cfg = collector_config.load(collector_path)
    base = probe_cfg.collector.url.rstrip("/")
    links = f"status page: {base}/   metrics: {base}/metrics   API: {base}/api/v1/measurements"
    Path("var").mkdir(exist_ok=True)
    try:
        if not start_collector:
            asyncio.run(_loop(probe_cfg, os.environ.get("KUZOT_TOKEN"), links))
            return 0
        token = issue_token(collector_path, probe_cfg.identity.probe_id)
        with collector_process(collector_path, collector_cfg.listen):
            asyncio.run(_wait_healthy(base))
            print(links, flush=True)
            asyncio.run(_loop(probe_cfg, token, links))
    except KeyboardInterrupt:
        print("\nstopped.")
    return 0



def add_parser(sub: Any) -> None:
    """Register the ``live`` subcommand on the probe's subparsers."""
    live = sub.add_parser("live", help="collector + probe + live table (the quickstart)")
    live.add_argument("--config", default="configs/probe.yaml")
    live.add_argument("--collector-config", default="configs/collector.yaml")
    live.add_argument("--no-collector", action="store_true",
                      help="use an already running collector")


def main(args: argparse.Namespace) -> int:
    """Run ``live`` on parsed arguments; the exit status."""
    return run_live(args.config, args.collector_config, start_collector=not args.no_collector)
