"""``python -m probe trace URL``: locate the censor of a URL (a TTL-limited trace beside a
harmless control trace; needs CAP_NET_RAW). Exit 0 whatever the verdict, 2 on bad input."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from probe.cli.common import add_output_arguments, measure_and_print
from probe.core.typed_config import is_http_url


def add_parser(sub: Any) -> None:
    """Register the ``trace`` subcommand on the probe's subparsers."""
    trace = sub.add_parser("trace", help="locate the censor of a URL (needs CAP_NET_RAW)")
    trace.add_argument("url")
    trace.add_argument("--address", help="server address to trace to (default: resolve)")
    trace.add_argument("--control-name", default="example.com",
                       help="harmless name for the control trace")
    trace.add_argument("--max-ttl", type=int, default=30)
    trace.add_argument("--step-timeout", type=float, default=1.0,
                       help="seconds to wait for an answer at each TTL")
    add_output_arguments(trace)


def _validate(args: argparse.Namespace) -> str | None:
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


def print_table(measurement: dict[str, Any]) -> None:
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


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    from probe.nettests.censor_trace.measure import TraceOptions
    from probe.nettests.platforms.run import run_trace

    options = TraceOptions(address=args.address, control_name=args.control_name,
                           max_ttl=args.max_ttl, step_timeout=args.step_timeout)
    return await run_trace(args.url, options, cc=args.cc, asn=args.asn)


def main(args: argparse.Namespace) -> int:
    """Run ``trace`` on parsed arguments; the exit status."""
    return measure_and_print(args, _validate(args), lambda: _measure(args), print_table)
