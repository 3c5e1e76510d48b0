"""``python -m probe throttle URL``: one throttling measurement from the command line.

Exit 0 whatever the verdict, 2 on bad input (as ``check``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from probe.cli.common import add_output_arguments, measure_and_print
from probe.core.typed_config import is_http_url, parse_duration
from probe.nettests.throttling.measure import ThrottleOptions


def add_parser(sub: Any) -> None:
    """Register the ``throttle`` subcommand on the probe's subparsers."""
    parser = sub.add_parser(
        "throttle", help="measure a target against its co-hosted baseline (throttling test)")
    parser.add_argument("url", help="target URL (https)")
    parser.add_argument("--baseline", help="co-hosted baseline URL (same CDN or prefix)")
    parser.add_argument("--sni-ab", metavar="COLLECTOR_URL",
                        help="collector base URL; runs the SNI A/B test against it")
    parser.add_argument("--repetitions", type=int, default=3,
                        help="target/baseline rounds (default 3)")
    parser.add_argument("--ab-repetitions", type=int, default=3,
                        help="A/B rounds (default 3)")
    parser.add_argument("--max-bytes", type=int, default=512 * 1024,
                        help="bytes per transfer at most (default 524288)")
    parser.add_argument("--transfer-timeout", default="8s",
                        help="time per transfer at most (default 8s)")
    parser.add_argument("--innocuous-sni",
                        help="SNI of the A/B control (default: the baseline's host name)")
    parser.add_argument("--resolve", action="append", default=[], metavar="HOST:IP",
                        help="use IP for HOST instead of resolving it (repeatable)")
    parser.add_argument("--ca-file", help="extra trust anchors (PEM)")
    add_output_arguments(parser)


def _options(args: argparse.Namespace) -> tuple[ThrottleOptions | None, str | None]:
    for name, url in (("url", args.url), ("--baseline", args.baseline),
                      ("--sni-ab", args.sni_ab)):
        if url is not None and is_http_url(url):
            return None, f"{name}: {is_http_url(url)}"
    if not args.url.startswith("https://"):
        return None, "url: the throttling test needs an https URL"
    if args.baseline and not args.baseline.startswith("https://"):
        return None, "--baseline: the throttling test needs an https URL"
    for name in ("repetitions", "ab_repetitions", "max_bytes"):
        if getattr(args, name) <= 0:
            return None, f"--{name.replace('_', '-')}: must be positive"
    try:
        timeout = parse_duration(args.transfer_timeout)
    except ValueError as exc:
        return None, f"--transfer-timeout: {exc}"
    if timeout <= 0:
        return None, "--transfer-timeout: must be positive"
    resolve = {}
    for item in args.resolve:
        host, sep, ip = item.partition(":")
        if not sep or not host or not ip:
            return None, f"--resolve: not HOST:IP: {item!r}"
        resolve[host] = ip
    if args.ca_file and not Path(args.ca_file).is_file():
        return None, f"--ca-file: no such file: {args.ca_file}"
    return ThrottleOptions(
        repetitions=args.repetitions, ab_repetitions=args.ab_repetitions,
        byte_limit=args.max_bytes, transfer_timeout=timeout, ca_file=args.ca_file,
        innocuous_sni=args.innocuous_sni, resolve=resolve), None


def _kbps(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value / 1000:.0f} kbit/s"


def print_table(measurement: dict[str, Any]) -> None:
    keys = measurement["test_keys"]
    analysis, summary = keys["analysis"], keys["summary"]
    print(f"{'target':<10} {keys['target']}")
    print(f"{'baseline':<10} {keys['baseline'] or '-'}")
    print(f"{'verdict':<10} {analysis['verdict']}  layer={analysis['layer']} "
          f"mechanism={analysis['mechanism']} confidence={analysis['confidence']}")
    from probe.nettests.throttling.analysis import flow_metrics

    for flow in keys["flows"] + ((keys.get("sni_ab") or {}).get("flows") or []):
        m = flow_metrics(flow)
        outcome = flow["failure"] or "ok"
        if flow.get("x_slow"):
            outcome = "slow (timed out while receiving)"
        print(f"{flow['role']:<12} #{flow['round']} {flow['server_name']:<28} "
              f"tls={m['tls_handshake_s']}s ttfb={m['ttfb_s']}s bytes={m['bytes']} "
              f"goodput={_kbps(m['goodput_bps'])} {outcome}")
    print(f"{'ratio':<10} goodput baseline/target={summary['goodput_ratio']} "
          f"handshake target/baseline={summary['handshake_ratio']}")
    ab = keys.get("sni_ab_result")
    if ab:
        print(f"{'sni a/b':<10} {ab['verdict']} area={ab['area']} p={ab['ks_pvalue']} "
              f"original={_kbps(ab['original_median_bps'])} "
              f"control={_kbps(ab['control_median_bps'])} (medians)")
    elif keys.get("sni_ab_failure"):
        print(f"{'sni a/b':<10} not run: {keys['sni_ab_failure']}")
    print(f"{'data':<10} {keys['x_budget']['bytes_used']} bytes")
    for line in analysis["evidence"]:
        print(f"{'evidence':<10} {line}")


def main(args: argparse.Namespace) -> int:
    options, problem = _options(args)

    async def measure() -> dict[str, Any]:
        from probe.nettests.throttling.run import run_throttling

        assert options is not None  # measure_and_print runs it only when there is no problem
        return await run_throttling(args.url, args.baseline, options, args.sni_ab, cc=args.cc,
                                    asn=args.asn, ab_ca_file=args.ca_file)

    return measure_and_print(args, problem, measure, print_table)
