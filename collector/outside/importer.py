"""Write a block file from per-AS lists of announced prefixes (ipverse/asn-ip JSON).

Why: the shipped ``configs/outside/kg-kz-blocks.txt`` is a snapshot; an operator refreshes it
(or builds one for other networks) from the same public source, and every line keeps its
source after ``#`` so the file says where each prefix came from.

Input: one ``aggregated.json`` per autonomous system as published by
https://github.com/ipverse/asn-ip (``as/<ASN>/aggregated.json``: ``asn``, ``handle``,
``description``, ``subnets.ipv4``; built daily from the global BGP table). Usage::

    python -m collector.outside.importer KG:elcat:8449.json[:COMMIT] ... > blocks.txt

Each network is written under its ASN (``KG AS8449 5.57.8.0/21  # elcat``), so that events from
the outside-in signal and from the probes name the same network; the name given on the
command line stays as the line's comment.

Prefixes longer than /24 cannot be probed as blocks and are written as comments. The output
is checked with ``collector.outside.blocks.parse_blocks`` before it is printed, so a file this
writes always loads.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.outside.blocks import parse_blocks


class SourceError(ValueError):
    """An input that cannot be turned into block lines; the message names the input."""


@dataclass(frozen=True, slots=True)
class Source:
    country: str
    network: str
    path: Path
    commit: str | None = None

    @classmethod
    def parse(cls, text: str) -> Source:
        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(parts[:3]):
            raise SourceError(f"expected COUNTRY:NETWORK:FILE[:COMMIT], got {text!r}")
        return cls(parts[0], parts[1], Path(parts[2]), parts[3] if len(parts) == 4 else None)


def read_source(source: Source) -> tuple[str, str, list[ipaddress.IPv4Network]]:
    """The ASN (``AS1234``), the source note and the IPv4 prefixes of one AS file."""
    try:
        data = json.loads(source.path.read_text())
        asn = int(data["asn"])
        prefixes = [ipaddress.IPv4Network(str(p)) for p in data["subnets"]["ipv4"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{source.path}: not an ipverse/asn-ip aggregated.json ({exc})") from exc
    name = " ".join(str(data.get(k, "")) for k in ("handle", "description")).strip()
    at = f" @{source.commit[:12]}" if source.commit else ""
    return f"AS{asn}", f"{name}; ipverse/asn-ip as/{asn}/aggregated.json{at}", prefixes


def _minus(prefix: ipaddress.IPv4Network,
           holes: list[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    """``prefix`` without the more specific ``holes`` (each a subnet of it)."""
    pieces = [prefix]
    for hole in holes:
        next_pieces: list[ipaddress.IPv4Network] = []
        for piece in pieces:
            if hole.subnet_of(piece) and hole != piece:
                next_pieces += piece.address_exclude(hole)
            elif piece.subnet_of(hole):
                continue
            else:
                next_pieces.append(piece)
        pieces = next_pieces
    return sorted(pieces)


def render(sources: Sequence[Source], header: Sequence[str] = ()) -> str:
    """The block file; where one network announces a more specific prefix inside another's,
    the more specific one wins (it is where the packets go), as in longest-prefix routing."""
    read = [(source, *read_source(source)) for source in sources]
    lines = [*(f"# {h}" for h in header)]
    for source, asn, note, prefixes in read:
        others = [p for other, _, _, ps in read if other is not source for p in ps]
        lines += ["", f"# {source.country} {asn} ({source.network}): {note}"]
        for prefix in prefixes:
            if prefix.prefixlen > 24:
                lines.append(f"# skipped, longer than /24: {prefix}")
                continue
            holes = [p for p in others if p.subnet_of(prefix)]
            for piece in _minus(prefix, holes):
                if piece.prefixlen <= 24:
                    lines.append(f"{source.country}  {asn:<8} {str(piece):<18} # {source.network}")
    parse_blocks(lines, name="output")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        sys.stdout.write(render([Source.parse(a) for a in args]))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
