"""Cost of the outside-in prober on the collector: CPU per probe, memory per block.

Run: ``python bench/outside_prober.py [--repeat 3]``

Three numbers, for sizing ``outside.rate`` against the collector's CPU:

- the prober's own logic (scope check, token bucket, belief update, bookkeeping) per probe,
  over the shipped KG and KZ block files (10,347 /24 blocks), with a transport that answers
  at once from a table (no packets): a discovery round and a steady round;
- scapy building one probe packet and dissecting one reply (what ``RawTransport`` does per
  probe on top of the logic), for ICMP and TCP; the packets are built for 127.0.0.2 and
  never sent;
- memory held per block after discovery (``tracemalloc``).

CPU time (``time.process_time``), median of ``--repeat`` runs; the reference machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import sys
import time
import tracemalloc
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.outside.blocks import Block, parse_blocks  # noqa: E402
from collector.outside.pacer import TokenBucket  # noqa: E402
from collector.outside.prober import Prober, ProberSettings  # noqa: E402
from collector.outside.sender import PacedSender, Scope  # noqa: E402
from collector.outside.wire import Method, RawTransport, Target  # noqa: E402


class Table:
    """Every third address answers ICMP, instantly."""

    async def probe(self, target: Target, timeout: float) -> bool:
        return int(target.address) % 3 == 0 and target.method is Method.ICMP


def blocks() -> list[Block]:
    out: list[Block] = []
    for name in ("kg-blocks.txt", "kz-blocks.txt"):
        out += parse_blocks((ROOT / "configs" / "outside" / name).read_text().splitlines())
    return out


async def rounds(listed: list[Block]) -> tuple[float, int, float, int, Prober]:
    sender = PacedSender(Table(), Scope.of(listed), TokenBucket(rate=1e9, burst=1e9),
                         max_in_flight=1024)
    prober = Prober(listed, sender, ProberSettings(), rng=random.Random(1))
    start = time.process_time()
    first = await prober.round()
    discovery = time.process_time() - start
    start = time.process_time()
    steady = await prober.round()
    return discovery, first.sent, time.process_time() - start, steady.sent, prober


async def packets(count: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with RawTransport() as transport:
        for target in (Target(ipaddress.IPv4Address("127.0.0.2"), Method.ICMP),
                       Target(ipaddress.IPv4Address("127.0.0.2"), Method.TCP, 443)):
            start = time.process_time()
            for _ in range(count):
                data, _, _ = transport._packet(target)
                transport._match(data)
            out[str(target.method)] = (time.process_time() - start) / count
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    listed = blocks()
    runs = [asyncio.run(rounds(listed)) for _ in range(args.repeat)]
    discovery = median(r[0] / r[1] for r in runs)
    steady = median(r[2] / r[3] for r in runs)
    print(f"blocks: {len(listed)}")
    print(f"discovery round: {runs[0][1]} probes, {discovery * 1e6:.1f} us CPU per probe")
    print(f"steady round: {runs[0][3]} probes, {steady * 1e6:.1f} us CPU per probe")
    per_packet = [asyncio.run(packets(2000)) for _ in range(args.repeat)]
    for method in ("icmp", "tcp"):
        cost = median(p[method] for p in per_packet)
        print(f"scapy build + dissect, {method}: {cost * 1e6:.0f} us CPU per probe")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    held = asyncio.run(rounds(listed))[4]
    after = tracemalloc.take_snapshot()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"memory after discovery: {grown / len(held.tracks):.0f} bytes per block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
