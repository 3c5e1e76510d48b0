"""``python -m probe init``: tell the volunteer what running a probe means, ask for consent,
then write a config with safe defaults.

A volunteer in Kyrgyzstan or Kazakhstan takes a real risk by measuring censorship, so the
notice says plainly what is measured, what leaves the device, what does not, and what the
risk is, and nothing is written without an explicit "I agree" (interactive) or
``--accept-risks`` (automated installs, where whoever runs the installer has shown the
notice: ``--show-notice`` prints it). Without consent ``init`` writes nothing and exits 2.

The written config is loaded back with ``probe.config.probe_config.load`` before ``init`` reports
success, so ``init`` can never leave a config that ``run`` would reject.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from probe.config import probe_config
from probe.core.announcement import check_public_key
from probe.core.typed_config import (
    ConfigError,
    is_asn,
    is_country_code,
    is_host_port,
    is_http_url,
    parse_duration,
)
from probe.daemon.loop import NOTICE_VERSION

AGREE = "i agree"
BAD_INPUT = 2
SHIPPED_TARGETS = Path(__file__).resolve().parent.parent.parent / "configs" / "targets"
SHIPPED_PLATFORMS = SHIPPED_TARGETS.parent / "platforms.yaml"

NOTICE = f"""\
Kuzot probe: please read this before you agree (notice version {NOTICE_VERSION})

WHAT THE PROBE DOES
  It runs on this device and, every hour or so, tries to open a list of websites and
  apps: independent news sites of Kyrgyzstan and Kazakhstan, messengers (Telegram, WhatsApp,
  Signal), social networks, circumvention tools (Tor, Psiphon, VPN providers) and human
  rights organisations. For each it records what the network did: DNS answers, whether a
  connection opened, the TLS certificate, the HTTP status, size and title of the page, and
  how long each step took. Every minute or few it also checks whether the Internet is
  reachable at all (your router, your provider's DNS, a few large foreign servers).

WHAT IS SENT, AND TO WHOM
  These results go to the Kuzot collector you configure, with: your country, your network
  (the provider's AS number, if you give it), a random probe name, the software version,
  and how much data the probe used. The collector's operators publish results as open data,
  in OONI's format, so researchers and journalists can use them.

WHAT IS NOT SENT
  Your IP address: the probe removes its own addresses (IPv4 and IPv6, in every spelling)
  from every result before saving or sending it. No name, no e-mail, no location finer than
  your provider, nothing about other devices or your own browsing. Logs on this device
  contain no IP addresses and no token.

THE RISK
  Anyone who watches your Internet connection (your provider, and the authorities through
  it) can see that this device connects to blocked sites, to circumvention tools and to the
  collector. Measuring censorship may be treated as suspicious or unlawful where you live;
  laws on "extremist" materials, on communications and on publishing information may apply,
  and their use can change quickly, especially around elections and protests. The risk is
  yours. If you are unsure, talk to the people who asked you to run the probe, or do not run
  it. Prefer a connection that is not registered in your name only if that is lawful for you.

YOUR CONTROL
  It uses at most the daily data budget you set (100 MB by default). Stop it at any time
  (`systemctl stop kuzot-probe`); `python -m probe status` shows what it did and what waits
  to be sent. Deleting the spool file deletes everything not yet sent.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="probe.yaml",
                        help="where to write the probe config (default: ./probe.yaml)")
    parser.add_argument("--collector-url", help="collector base URL (https://...)")
    parser.add_argument("--token", help="the probe token the collector's operator gave you")
    parser.add_argument("--token-file", help="a file holding that token (instead of --token)")
    parser.add_argument("--announce-key", help="the collector operator's endpoint key "
                        "(base64, from `python -m collector endpoints-key`): lets the "
                        "collector announce new addresses when it moves (optional)")
    parser.add_argument("--country", help="KG or KZ (two-letter country code)")
    parser.add_argument("--asn", help="your provider's AS number, e.g. AS8449 (optional)")
    parser.add_argument("--probe-id", help="probe name agreed with the operator "
                        "(default: a random pseudonym)")
    parser.add_argument("--budget-mb", type=float, default=100.0,
                        help="daily data budget in MB (default 100)")
    parser.add_argument("--interval", default="1h", help="how often each site is measured "
                        "(default 1h; inside event windows four times as often)")
    parser.add_argument("--spool", help="spool file (default: /var/lib/kuzot/spool.sqlite "
                        "for configs under /etc, else next to the config)")
    parser.add_argument("--metrics-listen", help="HOST:PORT for a local /metrics (default off)")
    parser.add_argument("--targets-dir", help="where the shipped target lists are "
                        "(default: configs/targets of this installation)")
    parser.add_argument("--accept-risks", action="store_true",
                        help="record consent without asking (automated installs; the notice "
                        "must have been shown: see --show-notice)")
    parser.add_argument("--non-interactive", action="store_true",
                        help="never prompt; fail if something is missing")
    parser.add_argument("--show-notice", action="store_true",
                        help="print the notice and exit")
    parser.add_argument("--force", action="store_true", help="overwrite an existing config")
    parser.add_argument("--offline", action="store_true",
                        help="do not test the collector and the token now (during a shutdown)")


def add_parser(sub: Any) -> None:
    """Register the ``init`` subcommand on the probe's subparsers."""
    add_arguments(sub.add_parser("init", help="read the notice, consent, write the probe config"))


def main(args: argparse.Namespace) -> int:
    """Run ``init`` on parsed arguments with the process's own streams; the exit status."""
    return run_init(args, sys.stdin, sys.stdout, sys.stderr)


CHECK_TIMEOUT = 15.0  # seconds for the test heartbeat




class InitError(Exception):
    """Bad or missing input; the message says which flag."""


def _ask(prompt: str, stdin: TextIO, stdout: TextIO, secret: bool = False) -> str:
    if secret and stdin.isatty():
        return getpass.getpass(prompt).strip()
    stdout.write(prompt)
    stdout.flush()
    line = stdin.readline()
    if not line:
        raise InitError("input ended before all questions were answered")
    return line.strip()


def _consent(args: argparse.Namespace, interactive: bool, stdin: TextIO,
             stdout: TextIO) -> bool:
    if args.accept_risks:
        return True
    if not interactive:
        return False
    stdout.write(NOTICE + "\n")
    try:
        answer = _ask('Type "I agree" to accept these risks and continue (anything else '
                      'stops): ', stdin, stdout)
    except InitError:
        return False
    return answer.strip().strip('"').lower() == AGREE


MAX_TRIES = 5


def _question(prompt: str, check: Callable[[str], str | None], stdin: TextIO, stdout: TextIO,
              secret: bool = False, transform: Callable[[str], str] = str.strip) -> str:
    """Ask until the answer passes ``check`` (which returns a plain-words complaint or
    None); earlier answers stay as they were."""
    for _ in range(MAX_TRIES):
        answer = transform(_ask(prompt, stdin, stdout, secret))
        problem = check(answer)
        if problem is None:
            return answer
        stdout.write(f"  {problem} Try again.\n")
    raise InitError(f"no valid answer after {MAX_TRIES} tries: {prompt.strip()}")


def _url_problem(value: str) -> str | None:
    return "That is not a web address starting with https:// or http://." \
        if is_http_url(value) else None


def _token_problem(value: str) -> str | None:
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        return "A token is one word of letters, digits and signs, as the operator sent it."
    return None


def _country_problem(value: str) -> str | None:
    return "Two letters, such as KG or KZ." if is_country_code(value) else None


def _asn_problem(value: str) -> str | None:
    return "An AS number looks like AS8449 (or press Enter to skip)." \
        if value and is_asn(value) else None


def _fill(args: argparse.Namespace, interactive: bool, stdin: TextIO, stdout: TextIO) -> None:
    """Ask for what the flags did not give, checking each answer as it is typed; then check
    the flags (their errors name the flag, since the flag is what was typed)."""
    if not args.collector_url and interactive:
        args.collector_url = _question("Collector URL (from the operator, https://...): ",
                                       _url_problem, stdin, stdout)
    if not args.token and not args.token_file and interactive:
        args.token = _question("Probe token (from the operator; not shown): ",
                               _token_problem, stdin, stdout, secret=True)
    if not args.country and interactive:
        args.country = _question("Country (KG or KZ): ", _country_problem, stdin, stdout,
                                 transform=lambda v: v.strip().upper())
    if args.asn is None and interactive:
        args.asn = _question("Your provider's AS number, e.g. AS8449 (Enter to skip): ",
                             _asn_problem, stdin, stdout,
                             transform=lambda v: v.strip().upper()) or None
    if not args.collector_url or is_http_url(args.collector_url):
        raise InitError("--collector-url: an http(s) URL is required")
    if not args.token and not args.token_file:
        raise InitError("--token or --token-file: the probe token is required")
    if args.token_file and not Path(args.token_file).is_file():
        raise InitError(f"--token-file: no such file: {args.token_file}")
    if not args.country or is_country_code(args.country):
        raise InitError("--country: a two-letter upper-case country code is required")
    if args.announce_key and check_public_key(args.announce_key):
        raise InitError(f"--announce-key: {check_public_key(args.announce_key)}")
    if args.asn and is_asn(args.asn):
        raise InitError("--asn: not an AS number like AS8449")
    if args.budget_mb <= 0:
        raise InitError("--budget-mb: must be positive")
    try:
        if parse_duration(args.interval) <= 0:
            raise ValueError("not positive")
    except ValueError as exc:
        raise InitError(f"--interval: {exc}") from exc
    if args.metrics_listen and is_host_port(args.metrics_listen):
        raise InitError("--metrics-listen: not HOST:PORT")


class TokenRejected(InitError):
    """The collector refused the token (401/403)."""


async def _heartbeat(url: str, token: str, timeout: float) -> str | None:
    """One real heartbeat; the probe id the collector knows the token by, or None when the
    collector does not say. Raises TokenRejected, or OSError-like failures as InitError."""
    body = {"sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "queue_depth": 0}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session, session.post(
            url.rstrip("/") + "/api/v1/heartbeat", json=body,
            headers={"Authorization": f"Bearer {token}"}) as response:
        if response.status in (401, 403):
            raise TokenRejected("the collector rejected this token: ask your operator for "
                                "the right one")
        if response.status != 200:
            raise InitError(f"collector unreachable (HTTP {response.status})")
        try:
            answer = await response.json()
        except (aiohttp.ContentTypeError, ValueError) as exc:
            raise InitError("collector unreachable (not a Kuzot collector answer)") from exc
    probe_id = answer.get("probe_id") if isinstance(answer, dict) else None
    return probe_id if isinstance(probe_id, str) and probe_id else None


def check_collector(url: str, token: str, timeout: float = CHECK_TIMEOUT) -> str | None:
    """Test the collector and the token before anything is written. TokenRejected when the
    token is wrong; InitError("collector unreachable ...") when nothing answers."""
    try:
        return asyncio.run(_heartbeat(url, token, timeout))
    except InitError:
        raise
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc)[:200]
        raise InitError(f"collector unreachable ({reason})") from exc


def _token_of(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    return Path(args.token_file).read_text(encoding="utf-8").strip()


def _check(args: argparse.Namespace, interactive: bool, stdin: TextIO, stdout: TextIO,
           stderr: TextIO) -> str | None:
    """The collector's name for this probe, after a real heartbeat; a rejected token is asked
    again (or fails), an unreachable collector is reported and the setup goes on (a probe
    set up during a shutdown keeps its measurements until the collector answers)."""
    if args.offline:
        return None
    for _ in range(MAX_TRIES):
        try:
            return check_collector(args.collector_url, _token_of(args))
        except TokenRejected as exc:
            if not interactive or args.token_file:
                raise
            stdout.write(f"  {exc}. Try again.\n")
            args.token = _question("Probe token (from the operator; not shown): ",
                                   _token_problem, stdin, stdout, secret=True)
        except InitError as exc:
            stderr.write(f"warning: {exc}; the config is written anyway and the probe keeps "
                         "its measurements until the collector answers\n")
            return None
    raise TokenRejected("the collector rejected this token: ask your operator for the "
                        "right one")


def _quote(value: str | None) -> str:
    if value is None:
        return "null"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (it holds a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _copy_targets(source: Path, destination: Path, country: str) -> list[str]:
    """The country's list and the curated part of the global one (the full global list,
    1,700 URLs, is opt-in: see configs/targets/README.md), copied under the same names."""
    names = [f"{country.lower()}.csv", "curated/global.csv"]
    found = [n for n in names if (source / n).is_file()]
    if not found:
        raise InitError(f"--targets-dir: no target lists ({', '.join(names)}) in {source}")
    for name in found:
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, destination / name)
    return [f"targets/{name}" for name in found]


def _copy_platforms(destination: Path) -> str | None:
    """The shipped platform endpoint lists next to the config (None if not shipped)."""
    if not SHIPPED_PLATFORMS.is_file():
        return None
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED_PLATFORMS, destination / SHIPPED_PLATFORMS.name)
    return SHIPPED_PLATFORMS.name


def render_config(args: argparse.Namespace, token_file: Path, spool: Path,
                  target_files: list[str], probe_id: str, now: datetime,
                  platforms_file: str | None = None) -> str:
    files = ", ".join(_quote(f) for f in target_files)
    return f"""\
# Kuzot probe configuration, written by `python -m probe init`.
# Every key is explained in the README ("Configuration reference"). Check it with
# `python -m probe status --config THIS_FILE` once the probe runs.
identity:
  probe_id: {_quote(probe_id)}    # a pseudonym: it says nothing about you
  country: {args.country}
  asn: {_quote(args.asn)}
collector:
  url: {_quote(args.collector_url)}
  token_file: {_quote(str(token_file))}
  announce_key: {_quote(getattr(args, "announce_key", None))}   # signs endpoint moves; null: none
schedule:
  interval: {args.interval}          # each site; divided by event_speedup in event windows
  jitter: 0.2
  concurrency: 4          # parallel measurements: gentle on a Raspberry Pi and on the link
  heartbeat_interval: 60s
  ladder_interval: 5m
  offline_ladder_interval: 1m
budget:
  daily_mb: {args.budget_mb:g}        # measurements, uploads and heartbeats per UTC day
spool_path: {_quote(str(spool))}
spool_max_mb: 100         # oldest measurements are evicted (and counted) above this
metrics_listen: {_quote(args.metrics_listen)}
log_level: info           # info logs no addresses and no token
target_files: [{files}]
platforms:
  file: {_quote(platforms_file)}   # Telegram, WhatsApp, Signal, ...; null: none
  interval: 30m           # each platform; divided by event_speedup in event windows
censor_trace:
  enabled: true           # only with CAP_NET_RAW, only for sites found blocked by name
  interval: 6h            # at most one trace of a site per interval
  daily_max: 12
consent:
  accepted: true
  notice_version: {NOTICE_VERSION}
  accepted_at: {_quote(now.strftime("%Y-%m-%d %H:%M:%S"))}
"""


def next_steps(config: Path, python: str = sys.executable) -> tuple[str, str]:
    """The exact commands to start and check the probe: the systemd unit for a config under
    /etc (the unit's own path), else this installation's Python (its venv), not whatever
    ``python`` is first on the PATH."""
    if str(config).startswith("/etc/"):
        return ("systemctl enable --now kuzot-probe",
                f"runuser -u kuzot -- {python} -m probe status --config {config}")
    return (f"{python} -m probe run --config {config}",
            f"{python} -m probe status --config {config}")


def run_init(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO,
             now: datetime | None = None) -> int:
    """The whole of ``init``; returns the exit code. Streams are parameters so tests can
    answer the questions."""
    if args.show_notice:
        stdout.write(NOTICE)
        return 0
    config_path = Path(args.config)
    if config_path.exists() and not args.force:
        stderr.write(f"error: {config_path} exists; use --force to replace it\n")
        return BAD_INPUT
    # Automated installs (--accept-risks or --non-interactive) must fail, not hang, when a
    # value is missing; otherwise questions are read from stdin, a terminal or a pipe.
    interactive = not (args.non_interactive or args.accept_risks)
    try:
        if not _consent(args, interactive, stdin, stdout):
            stderr.write("No consent given: nothing was written. Read the notice with "
                         "`python -m probe init --show-notice`.\n")
            return BAD_INPUT
        _fill(args, interactive, stdin, stdout)
        known_as = _check(args, interactive, stdin, stdout, stderr)
        if known_as and args.probe_id and args.probe_id != known_as:
            raise InitError(f"--probe-id: the collector knows this token as {known_as!r}; "
                            "leave --probe-id out or use that name")
        directory = config_path.resolve().parent
        target_files = _copy_targets(Path(args.targets_dir) if args.targets_dir
                                     else SHIPPED_TARGETS, directory / "targets", args.country)
        platforms_file = _copy_platforms(directory)
    except InitError as exc:
        stderr.write(f"error: {exc}\n")
        return BAD_INPUT
    if args.token_file:
        token_file = Path(args.token_file).resolve()
    else:
        token_file = directory / "probe.token"
        _write_private(token_file, args.token + "\n")
    if args.spool:
        spool = Path(args.spool).resolve()
    elif str(directory).startswith("/etc/"):
        spool = Path("/var/lib/kuzot/spool.sqlite")
    else:
        spool = directory / "spool.sqlite"
    # One name everywhere: the collector's for this token when it said, else the one asked
    # for, else a random pseudonym.
    probe_id = known_as or args.probe_id or f"{args.country.lower()}-{secrets.token_hex(4)}"
    text = render_config(args, token_file, spool, target_files, probe_id,
                         now or datetime.now(UTC), platforms_file)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = config_path.with_name(config_path.name + ".new")
    temporary.write_text(text)
    try:
        probe_config.load(temporary)
    except ConfigError as exc:  # a bug in this module, never the volunteer's fault
        temporary.unlink()
        stderr.write(f"error: the generated config does not load: {exc}\n")
        return BAD_INPUT
    temporary.replace(config_path)
    start, check = next_steps(config_path.resolve())
    stdout.write(
        f"Wrote {config_path} (probe {probe_id}, {args.country}, budget "
        f"{args.budget_mb:g} MB/day).\n"
        f"Start it with: {start}\n"
        f"Check it with: {check}\n")
    return 0
