"""Command line of the probe (contract: shared design notes, section 3).

``check URL`` runs one web connectivity measurement; ``run`` is the daemon; ``live`` is the
main job of the quickstart (collector + probe + a live terminal table).
Exit codes: 0 whatever the verdict, 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from probe.checks import web
from probe.control_client import ControlClient
from probe.measurement import to_json
from probe.typed_config import ConfigError, is_host_port, is_http_url

BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m probe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="measure one URL (web connectivity) and print it")
    check.add_argument("url")
    check.add_argument("--control", help="collector base URL used as control vantage")
    check.add_argument("--resolver", action="append", default=[],
                       help="extra UDP resolver IP[:PORT] (repeatable)")
    check.add_argument("--ca-file", help="extra trust anchors (PEM)")
    check.add_argument("--json", action="store_true", help="print the JSON measurement")
    check.add_argument("--cc", default="ZZ", help="declared country code")
    check.add_argument("--asn", default="AS0", help="declared ASN")
    run = sub.add_parser("run", help="run the probe daemon")
    run.add_argument("--config", required=True)
    run.add_argument("--once", action="store_true", help="one round, upload, then exit")
    live = sub.add_parser("live", help="collector + probe + live table (the quickstart)")
    live.add_argument("--config", default="configs/probe.yaml")
    live.add_argument("--collector-config", default="configs/collector.yaml")
    live.add_argument("--no-collector", action="store_true",
                      help="use an already running collector")
    return parser


def _validate_check(args: argparse.Namespace) -> str | None:
    if is_http_url(args.url):
        return f"url: {is_http_url(args.url)}"
    if args.control and is_http_url(args.control):
        return f"--control: {is_http_url(args.control)}"
    for resolver in args.resolver:
        if is_host_port(resolver if resolver.count(":") == 1 else f"{resolver}:53"):
            return f"--resolver: not IP[:PORT]: {resolver!r}"
    if args.ca_file and not Path(args.ca_file).is_file():
        return f"--ca-file: no such file: {args.ca_file}"
    return None


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
        print(f"{'dns':<10} {query['engine']:<12} {query['failure'] or ','.join(answers)}")
    for connect in keys["tcp_connect"]:
        print(f"{'tcp':<10} {connect['ip']}:{connect['port']} "
              f"{connect['status']['failure'] or 'ok'}")
    for handshake in keys["tls_handshakes"]:
        print(f"{'tls':<10} {handshake['address']} sni={handshake['server_name']} "
              f"{handshake['failure'] or handshake['tls_version']}")
    for request in keys["requests"]:
        response = request["response"]
        outcome = request["failure"] or f"{response['code']} {response['body_length']} bytes"
        print(f"{'http':<10} {request['request']['url']} {outcome}")
    for line in analysis["evidence"]:
        print(f"{'evidence':<10} {line}")


async def _check(args: argparse.Namespace) -> int:
    from probe.web_test import run_web_connectivity

    options = web.WebOptions(udp_resolvers=tuple(args.resolver), ca_file=args.ca_file)
    control = ControlClient(args.control, ca_file=args.ca_file) if args.control else None
    measurement = await run_web_connectivity(args.url, options, control, cc=args.cc,
                                             asn=args.asn)
    if args.json:
        print(to_json(measurement, indent=2))
    else:
        _print_table(measurement)
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
        if args.command == "run":
            from probe.daemon import run_daemon

            return asyncio.run(run_daemon(args.config, once=args.once))
        if args.command == "live":
            from probe.live import run_live

            return run_live(args.config, args.collector_config,
                            start_collector=not args.no_collector)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return BAD_INPUT
