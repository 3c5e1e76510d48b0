"""``python -m probe platform NAME``: one platform reachability measurement (Telegram,
WhatsApp, ...), printed as a table or as the JSON measurement. Exit 0 whatever the verdict,
2 on bad input."""

from __future__ import annotations

import argparse
from typing import Any

from probe.cli.common import (
    add_output_arguments,
    ca_file_problem,
    measure_and_print,
    vantage_problem,
)
from probe.core.typed_config import ConfigError
from probe.nettests.control_client import ControlClient


def add_parser(sub: Any) -> None:
    """Register the ``platform`` subcommand on the probe's subparsers."""
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
    add_output_arguments(platform)


def _validate(args: argparse.Namespace) -> str | None:
    from probe.config.platforms import PLATFORMS

    if args.name not in PLATFORMS:
        return f"name: unknown platform {args.name!r} (known: {', '.join(PLATFORMS)})"
    return vantage_problem(args) or ca_file_problem(args)


def print_table(measurement: dict[str, Any]) -> None:
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


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
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
    return await run_platform(args.name, config, options, control, cc=args.cc, asn=args.asn)


def main(args: argparse.Namespace) -> int:
    """Run ``platform`` on parsed arguments; the exit status."""
    return measure_and_print(args, _validate(args), lambda: _measure(args), print_table)
