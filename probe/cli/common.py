"""What the measuring commands (``check``, ``platform``, ``trace``, ``throttle``) share: the
exit status for bad input, the checks of the options several of them take, and the
validate-measure-print body."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from probe.core.measurement import to_json
from probe.core.typed_config import is_http_url

BAD_INPUT = 2


def control_problem(url: str) -> str | None:
    """Why ``url`` cannot be a control, or None. The control client appends
    ``/api/v1/control`` to the collector's base URL; the full path would be asked for twice
    and answer 404."""
    if is_http_url(url):
        return is_http_url(url)
    if url.rstrip("/").endswith("/api/v1/control"):
        base = url.rstrip("/").removesuffix("/api/v1/control")
        return f"give the collector's base URL ({base}), not the control's path"
    return None


def resolver_problem(value: str) -> bool:
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


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--cc`` and ``--asn``, which every measuring command takes."""
    parser.add_argument("--json", action="store_true", help="print the JSON measurement")
    parser.add_argument("--cc", default="ZZ", help="declared country code")
    parser.add_argument("--asn", default="AS0", help="declared ASN")


def vantage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--control`` and ``--resolver`` (``check``, ``platform``)."""
    if args.control and control_problem(args.control):
        return f"--control: {control_problem(args.control)}"
    for resolver in args.resolver:
        if resolver_problem(resolver):
            return f"--resolver: not IP[:PORT]: {resolver!r}"
    return None


def ca_file_problem(args: argparse.Namespace) -> str | None:
    """``--ca-file`` names no file."""
    if args.ca_file and not Path(args.ca_file).is_file():
        return f"--ca-file: no such file: {args.ca_file}"
    return None


def measure_and_print(args: argparse.Namespace, problem: str | None,
                      measure: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
                      print_table: Callable[[dict[str, Any]], None]) -> int:
    """The body every measuring command shares: refuse bad input (exit 2, nothing measured),
    else measure once and print the JSON measurement (``--json``) or the command's table.
    Exit 0 whatever the verdict."""
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return BAD_INPUT
    measurement = asyncio.run(measure())
    if args.json:
        print(to_json(measurement, indent=2))
    else:
        print_table(measurement)
    return 0
