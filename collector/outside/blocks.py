"""The list of /24 blocks to probe, per country and network, minus the operator's opt-out list.

Why a file of our own: the prober must send packets only to address space the operator chose
and can answer for. Each line names the country, the network and one announced IPv4 prefix,
with its source after ``#``::

    KG  example-net  192.0.2.0/24     # where this prefix was taken from

Prefixes are split into /24 blocks (Trinocular's unit). Prefixes longer than /24 are refused,
since a block is probed as a whole. Any /24 that overlaps an opt-out prefix is dropped whole,
so no address of an opted-out range is ever probed. ``max_blocks`` bounds the work a file can
ask for; a file over it is refused rather than cut short, so the operator sees it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

MAX_BLOCKS_DEFAULT = 65536


class BlockFileError(ValueError):
    """A block or opt-out file that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True, order=True)
class Block:
    """One /24 block of one network in one country."""

    country: str
    network: str
    prefix: ipaddress.IPv4Network


def _strip(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _parse_prefix(text: str, where: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise BlockFileError(f"{where}: not a network prefix: {text!r} ({exc})") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise BlockFileError(f"{where}: only IPv4 prefixes are probed, got {text}")
    return net


def parse_opt_out(lines: Iterable[str], name: str = "opt-out") -> list[ipaddress.IPv4Network]:
    """One prefix per line (any length up to /32); ``#`` starts a comment."""
    prefixes = []
    for number, raw in enumerate(lines, start=1):
        text = _strip(raw)
        if text:
            prefixes.append(_parse_prefix(text, f"{name}:{number}"))
    return prefixes


def parse_blocks(
    lines: Iterable[str],
    opt_out: Iterable[ipaddress.IPv4Network] = (),
    max_blocks: int = MAX_BLOCKS_DEFAULT,
    name: str = "blocks",
) -> list[Block]:
    """Read a block file into sorted, de-duplicated /24 blocks, opt-outs removed."""
    excluded = list(opt_out)
    seen: dict[ipaddress.IPv4Network, Block] = {}
    for number, raw in enumerate(lines, start=1):
        where = f"{name}:{number}"
        text = _strip(raw)
        if not text:
            continue
        fields = text.split()
        if len(fields) != 3:
            raise BlockFileError(f"{where}: expected 'COUNTRY NETWORK PREFIX', got {text!r}")
        country, network, prefix_text = fields
        if len(country) != 2 or not country.isalpha() or not country.isupper():
            raise BlockFileError(f"{where}: country must be two capital letters, got {country!r}")
        prefix = _parse_prefix(prefix_text, where)
        if prefix.prefixlen > 24:
            raise BlockFileError(f"{where}: {prefix} is longer than /24; list whole /24 blocks")
        count = 2 ** (24 - prefix.prefixlen)
        if len(seen) + count > max_blocks:
            raise BlockFileError(f"{where}: more than {max_blocks} /24 blocks in total")
        for sub in prefix.subnets(new_prefix=24):
            if any(sub.overlaps(out) for out in excluded):
                continue
            earlier = seen.get(sub)
            if earlier is not None and (earlier.country, earlier.network) != (country, network):
                raise BlockFileError(
                    f"{where}: {sub} already listed for {earlier.country} {earlier.network}"
                )
            seen[sub] = Block(country=country, network=network, prefix=sub)
    return sorted(seen.values())
