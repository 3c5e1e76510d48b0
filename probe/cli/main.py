"""Command line of the probe.

``check URL [--control URL] [--resolver IP[:PORT]] [--doh URL] [--ca-file PEM] [--json]``
runs one web connectivity measurement; ``init`` onboards a volunteer (notice, consent,
config); ``run`` is the daemon; ``status`` tells what the daemon did; ``live`` is the
main job of the quickstart (collector + probe + a live terminal table); ``platform NAME``
checks one platform (Telegram, WhatsApp, ...); ``trace URL`` locates the censor of a URL;
``throttle URL`` measures a target against its co-hosted baseline and the SNI A/B test;
``analyze FILE...`` re-runs the analysis on recorded web connectivity measurements (OONI's or
Kuzot's) and prints a table (or JSON lines).
Exit codes: 0 whatever the verdict, 2 on bad input (and on missing consent; for ``analyze``,
when nothing could be analysed).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import shutil
import sys
from pathlib import Path
from typing import Any

from probe.cli import init as onboarding
from probe.cli import throttle as throttle_cli
from probe.core.measurement import to_json
from probe.core.typed_config import ConfigError, is_http_url, parse_duration
from probe.nettests.control_client import ControlClient
from probe.nettests.web_connectivity import measure as web

BAD_INPUT = 2
# Operations whose timeout ``check --timeout OP=DURATION`` may shorten (the lab does, so that a
# blackholed connection costs a few seconds instead of ten).
TIMEOUT_NAMES = ("dns", "connect", "tls", "http", "control")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m probe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="measure one URL (web connectivity) and print it")
    check.add_argument("url")
    check.add_argument("--control", help="collector base URL used as control vantage")
    check.add_argument("--resolver", action="append", default=[],
                       help="extra UDP resolver IP[:PORT] (repeatable)")
    check.add_argument("--doh", action="append", default=[],
                       help="extra DNS-over-HTTPS resolver URL (repeatable)")
    check.add_argument("--ca-file", help="extra trust anchors (PEM)")
    check.add_argument("--json", action="store_true", help="print the JSON measurement")
    check.add_argument("--cc", default="ZZ", help="declared country code")
    check.add_argument("--asn", default="AS0", help="declared ASN")
    check.add_argument("--timeout", action="append", default=[], metavar="OP=DURATION",
                       help=f"per-operation timeout, OP one of {', '.join(TIMEOUT_NAMES)} "
                            "(repeatable; e.g. connect=2s)")
    platform = sub.add_parser("platform", help="check one platform (telegram, youtube, ...)")
    platform.add_argument("name")
    platform.add_argument("--platforms", default="configs/platforms.yaml",
                          help="endpoint lists (default: configs/platforms.yaml)")
    platform.add_argument("--control", help="collector base URL used as control vantage")
    platform.add_argument("--resolver", action="append", default=[],
                          help="extra UDP resolver IP[:PORT] (repeatable)")
    platform.add_argument("--ca-file", help="extra trust anchors (PEM)")
    platform.add_argument("--no-fingerprint", action="store_true",
                          help="do not fingerprint resets with raw packets")
    platform.add_argument("--json", action="store_true", help="print the JSON measurement")
    platform.add_argument("--cc", default="ZZ", help="declared country code")
    platform.add_argument("--asn", default="AS0", help="declared ASN")
    trace = sub.add_parser("trace", help="locate the censor of a URL (needs CAP_NET_RAW)")
    trace.add_argument("url")
    trace.add_argument("--address", help="server address to trace to (default: resolve)")
    trace.add_argument("--control-name", default="example.com",
                       help="harmless name for the control trace")
    trace.add_argument("--max-ttl", type=int, default=30)
    trace.add_argument("--step-timeout", type=float, default=1.0,
                       help="seconds to wait for an answer at each TTL")
    trace.add_argument("--json", action="store_true", help="print the JSON measurement")
    trace.add_argument("--cc", default="ZZ", help="declared country code")
    trace.add_argument("--asn", default="AS0", help="declared ASN")
    analyze = sub.add_parser(
        "analyze", help="re-analyse recorded web connectivity measurements (OONI's or ours)")
    analyze.add_argument("files", nargs="+", metavar="FILE",
                         help="a measurement per file or per line, gzip allowed; - for stdin")
    analyze.add_argument("--json", action="store_true", help="one JSON object per line")
    init = sub.add_parser("init", help="read the notice, consent, write the probe config")
    onboarding.add_arguments(init)
    run = sub.add_parser("run", help="run the probe daemon")
    run.add_argument("--config", required=True)
    run.add_argument("--once", action="store_true", help="one round, upload, then exit")
    throttle_cli.add_parser(sub)
    status = sub.add_parser("status", help="spool, uploads, heartbeats, verdicts, data used")
    status.add_argument("--config", required=True)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    live = sub.add_parser("live", help="collector + probe + live table (the quickstart)")
    live.add_argument("--config", default="configs/probe.yaml")
    live.add_argument("--collector-config", default="configs/collector.yaml")
    live.add_argument("--no-collector", action="store_true",
                      help="use an already running collector")
    return parser


def _control_problem(url: str) -> str | None:
    """Why ``url`` cannot be a control, or None. The control client appends
    ``/api/v1/control`` to the collector's base URL; the full path would be asked for twice
    and answer 404."""
    if is_http_url(url):
        return is_http_url(url)
    if url.rstrip("/").endswith("/api/v1/control"):
        base = url.rstrip("/").removesuffix("/api/v1/control")
        return f"give the collector's base URL ({base}), not the control's path"
    return None


def _resolver_problem(value: str) -> bool:
    """Whether ``value`` is not ``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address.

    A name or an out-of-range address (``999.1.1.1``) is refused here: the measurement would
    otherwise record an unusable resolver as if it had been asked.
    """
    host, port = value, "53"
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            return True
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (port.isascii() and port.isdigit() and 0 < int(port) < 65536)


def _validate_check(args: argparse.Namespace) -> str | None:
    if is_http_url(args.url):
        return f"url: {is_http_url(args.url)}"
    if args.control and _control_problem(args.control):
        return f"--control: {_control_problem(args.control)}"
    for resolver in args.resolver:
        if _resolver_problem(resolver):
            return f"--resolver: not IP[:PORT]: {resolver!r}"
    for doh in args.doh:
        if is_http_url(doh) or not doh.startswith("https://"):
            return f"--doh: not an https URL: {doh!r}"
    if args.ca_file and not Path(args.ca_file).is_file():
        return f"--ca-file: no such file: {args.ca_file}"
    try:
        parse_timeouts(args.timeout)
    except ValueError as exc:
        return f"--timeout: {exc}"
    return None


def parse_timeouts(items: list[str]) -> dict[str, float]:
    """``["connect=2s", "http=3"]`` -> ``{"connect": 2.0, "http": 3.0}``; ValueError if bad."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in TIMEOUT_NAMES:
            raise ValueError(f"not OP=DURATION with OP in {', '.join(TIMEOUT_NAMES)}: {item!r}")
        try:
            seconds = float(value)  # bare seconds, as in the config files
        except ValueError:
            seconds = parse_duration(value)
        if not 0 < seconds < float("inf"):
            raise ValueError(f"must be positive: {item!r}")
        out[name] = seconds
    return out


def _print_table(measurement: dict[str, object]) -> None:
    keys = measurement["test_keys"]
    assert isinstance(keys, dict)
    analysis = keys["analysis"]
    print(f"{'url':<10} {measurement['input']}")
    print(f"{'verdict':<10} {analysis['verdict']}  layer={analysis['layer']} "
          f"mechanism={analysis['mechanism']} confidence={analysis['confidence']}")
    print(f"{'ooni':<10} blocking={keys['blocking']} accessible={keys['accessible']}")
    for query in keys["queries"]:
        answers = [a.get("ipv4") or a.get("ipv6") for a in query["answers"]]
        where = f"{query['engine']} {query['query_type']}"
        late = len(query.get("x_late_answers") or [])
        print(f"{'dns':<10} {where:<16} {query['failure'] or ','.join(answers)}"
              + (f"  (+{late} late answers)" if late else ""))
    for connect in keys["tcp_connect"]:
        print(f"{'tcp':<10} {connect['ip']}:{connect['port']} "
              f"{connect['status']['failure'] or 'ok'}")
    for handshake in keys["tls_handshakes"]:
        chain = handshake.get("x_certificates") or [{}]
        outcome = handshake["failure"] or (
            f"{handshake['tls_version']} {handshake['cipher_suite']} "
            f"alpn={handshake['negotiated_protocol']}")
        print(f"{'tls':<10} {handshake['address']} sni={handshake['server_name']} {outcome}"
              f"  issuer={chain[0].get('issuer')}")
    for request in reversed(keys["requests"]):
        response = request["response"]
        outcome = request["failure"] or f"{response['code']} {response['x_body_length']} bytes"
        timings = request.get("x_timings") or {}
        phases = " ".join(f"{k}={v:.3f}s" for k, v in timings.items() if v is not None)
        print(f"{'http':<10} {request['request']['url']} {outcome}  {phases}")
    for line in analysis["evidence"]:
        print(f"{'evidence':<10} {line}")


async def _check(args: argparse.Namespace) -> int:
    from probe.nettests.web_connectivity.run import run_web_connectivity

    timeouts = parse_timeouts(args.timeout)
    default = web.WebOptions()
    options = web.WebOptions(
        udp_resolvers=tuple(args.resolver), doh_resolvers=tuple(args.doh),
        ca_file=args.ca_file,
        dns_timeout=timeouts.get("dns", default.dns_timeout),
        connect_timeout=timeouts.get("connect", default.connect_timeout),
        tls_timeout=timeouts.get("tls", default.tls_timeout),
        http_timeout=timeouts.get("http", default.http_timeout))
    control = ControlClient(args.control, timeout=timeouts.get("control", 30.0),
                            ca_file=args.ca_file) if args.control else None
    measurement = await run_web_connectivity(args.url, options, control, cc=args.cc,
                                             asn=args.asn)
    if args.json:
        print(to_json(measurement, indent=2))
    else:
        _print_table(measurement)
    return 0


def _validate_platform(args: argparse.Namespace) -> str | None:
    from probe.config.platforms import PLATFORMS

    if args.name not in PLATFORMS:
        return f"name: unknown platform {args.name!r} (known: {', '.join(PLATFORMS)})"
    if args.control and _control_problem(args.control):
        return f"--control: {_control_problem(args.control)}"
    for resolver in args.resolver:
        if _resolver_problem(resolver):
            return f"--resolver: not IP[:PORT]: {resolver!r}"
    if args.ca_file and not Path(args.ca_file).is_file():
        return f"--ca-file: no such file: {args.ca_file}"
    return None


def _validate_trace(args: argparse.Namespace) -> str | None:
    import ipaddress

    if is_http_url(args.url):
        return f"url: {is_http_url(args.url)}"
    if args.address:
        try:
            ipaddress.IPv4Address(args.address)
        except ValueError:
            return f"--address: not an IPv4 address: {args.address!r}"
    if not 1 <= args.max_ttl <= 64:
        return "--max-ttl: must be in 1..64"
    if not args.step_timeout > 0:
        return "--step-timeout: must be positive"
    return None


def _print_platform(measurement: dict[str, Any]) -> None:
    keys = measurement["test_keys"]
    analysis = keys["analysis"]
    print(f"{'platform':<10} {keys['x_platform']}")
    print(f"{'verdict':<10} {analysis['verdict']}  layer={analysis['layer']} "
          f"mechanism={analysis['mechanism']} confidence={analysis['confidence']}")
    for group, result in keys["x_groups"].items():
        print(f"{'group':<10} {group:<14} {result['verdict']} {result['layer'] or ''} "
              f"{result['mechanism'] or ''}".rstrip())
    for endpoint in keys["x_endpoints"]:
        result = endpoint["analysis"]
        print(f"{'endpoint':<10} {endpoint['group']:<14} {endpoint['target']} "
              f"{result['verdict']} {endpoint['failure'] or ''}".rstrip())
    for key, value in keys.items():
        if key.startswith(("telegram_", "whatsapp_", "registration_", "signal_", "facebook_")):
            print(f"{'ooni':<10} {key}={value}")


def _print_trace(measurement: dict[str, Any]) -> None:
    keys = measurement["test_keys"]
    analysis = keys["analysis"]
    print(f"{'url':<10} {measurement['input']}  address={keys.get('address')}")
    print(f"{'verdict':<10} {analysis['verdict']}  layer={analysis['layer']} "
          f"mechanism={analysis['mechanism']}")
    if keys.get("failure"):
        print(f"{'failure':<10} {keys['failure']}")
    censor = keys.get("censor") or {}
    if censor.get("hop") is not None:
        print(f"{'censor':<10} hop {censor['hop']} ({censor['address']}), "
              f"server {censor['server_hops']} hops away")
    for name in ("control_hops", "trigger_hops"):
        for hop in keys.get(name) or []:
            print(f"{name[:-5]:<10} ttl={hop['ttl']:<3} icmp={hop['icmp_from'] or '-':<16} "
                  f"{hop['response'] or hop['failure'] or '-'}")
    for line in analysis["evidence"]:
        print(f"{'evidence':<10} {line}")


async def _platform(args: argparse.Namespace) -> int:
    from probe.config import platforms as platform_config
    from probe.nettests.platforms.measure import PlatformOptions
    from probe.nettests.platforms.run import run_platform

    config = platform_config.load(args.platforms)
    if args.name not in config.platforms:
        raise ConfigError("platforms", f"{args.name} is not in {args.platforms}")
    options = PlatformOptions(udp_resolvers=tuple(args.resolver), ca_file=args.ca_file,
                              fingerprint=not args.no_fingerprint)
    control = (ControlClient(args.control, timeout=config.timeouts.control,
                             ca_file=args.ca_file) if args.control else None)
    measurement = await run_platform(args.name, config, options, control, cc=args.cc,
                                     asn=args.asn)
    if args.json:
        print(to_json(measurement, indent=2))
    else:
        _print_platform(measurement)
    return 0


async def _trace(args: argparse.Namespace) -> int:
    from probe.nettests.censor_trace.measure import TraceOptions
    from probe.nettests.platforms.run import run_trace

    options = TraceOptions(address=args.address, control_name=args.control_name,
                           max_ttl=args.max_ttl, step_timeout=args.step_timeout)
    measurement = await run_trace(args.url, options, cc=args.cc, asn=args.asn)
    if args.json:
        print(to_json(measurement, indent=2))
    else:
        _print_trace(measurement)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            problem = _validate_check(args)
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return BAD_INPUT
            return asyncio.run(_check(args))
        if args.command == "platform":
            problem = _validate_platform(args)
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return BAD_INPUT
            return asyncio.run(_platform(args))
        if args.command == "trace":
            problem = _validate_trace(args)
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return BAD_INPUT
            return asyncio.run(_trace(args))
        if args.command == "analyze":
            from probe.cli.analyze import run as run_analysis

            return run_analysis(args.files, args.json, sys.stdout, sys.stderr)
        if args.command == "init":
            return onboarding.run_init(args, sys.stdin, sys.stdout, sys.stderr)
        if args.command == "run":
            from probe.config import probe_config, target_sync
            from probe.daemon.loop import ConsentMissing, read_token, require_consent, run_daemon
            from probe.local.localdb import SpoolLocked

            try:
                # The collector's lists first (the last good copy stays if it does not answer);
                # the daemon then loads the config with them. Nothing is sent without consent.
                loaded = probe_config.load(args.config)
                require_consent(loaded)
                print(asyncio.run(target_sync.refresh(loaded, read_token(loaded, Path.cwd()))),
                      file=sys.stderr)
                return asyncio.run(run_daemon(args.config, once=args.once))
            except (ConsentMissing, SpoolLocked) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return BAD_INPUT
        if args.command == "status":
            from probe.cli.status import show
            from probe.config import probe_config

            loaded = probe_config.load(args.config)
            try:
                # On a terminal, its width; piped, the full 110-column table.
                width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
                print(show(loaded, args.json, width=width))
            except FileNotFoundError:
                # `probe live` (make run) uploads directly and keeps no spool: say so, since
                # it is the first thing a newcomer runs before asking for a status.
                print(f"error: no spool file yet ({loaded.spool_path}): the probe has not run "
                      "with this config (`probe run`; `probe live` keeps no spool)",
                      file=sys.stderr)
                return BAD_INPUT
            return 0
        if args.command == "throttle":
            return throttle_cli.main(args)
        if args.command == "live":
            from probe.cli.live import run_live

            return run_live(args.config, args.collector_config,
                            start_collector=not args.no_collector)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return BAD_INPUT
