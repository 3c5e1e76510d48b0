"""``python -m probe check URL``: one web connectivity measurement, printed as a table or as
the JSON measurement. Exit 0 whatever the verdict, 2 on bad input."""

from __future__ import annotations

import argparse
from typing import Any

from probe.cli.common import (
    add_output_arguments,
    ca_file_problem,
    measure_and_print,
    vantage_problem,
)
from probe.core.typed_config import is_http_url, parse_duration
from probe.nettests.control_client import ControlClient
from probe.nettests.web_connectivity import measure as web

# Operations whose timeout ``check --timeout OP=DURATION`` may shorten (the lab does, so that a
# blackholed connection costs a few seconds instead of ten).
TIMEOUT_NAMES = ("dns", "connect", "tls", "http", "control")


def add_parser(sub: Any) -> None:
    """Register the ``check`` subcommand on the probe's subparsers."""
    check = sub.add_parser("check", help="measure one URL (web connectivity) and print it")
    check.add_argument("url")
    check.add_argument("--control", help="collector base URL used as control vantage")
    check.add_argument("--resolver", action="append", default=[],
                       help="extra UDP resolver IP[:PORT] (repeatable)")
    check.add_argument("--doh", action="append", default=[],
                       help="extra DNS-over-HTTPS resolver URL (repeatable)")
    check.add_argument("--ca-file", help="extra trust anchors (PEM)")
    add_output_arguments(check)
    check.add_argument("--timeout", action="append", default=[], metavar="OP=DURATION",
                       help=f"per-operation timeout, OP one of {', '.join(TIMEOUT_NAMES)} "
                            "(repeatable; e.g. connect=2s)")


def _validate(args: argparse.Namespace) -> str | None:
    if is_http_url(args.url):
        return f"url: {is_http_url(args.url)}"
    problem = vantage_problem(args)
    if problem:
        return problem
    for doh in args.doh:
        if is_http_url(doh) or not doh.startswith("https://"):
            return f"--doh: not an https URL: {doh!r}"
    problem = ca_file_problem(args)
    if problem:
        return problem
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


def print_table(measurement: dict[str, object]) -> None:
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


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
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
    return await run_web_connectivity(args.url, options, control, cc=args.cc, asn=args.asn)


def main(args: argparse.Namespace) -> int:
    """Run ``check`` on parsed arguments; the exit status."""
    return measure_and_print(args, _validate(args), lambda: _measure(args), print_table)
