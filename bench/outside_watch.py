"""What the outside-in prober sends with the watch sets, over the shipped block files.

Run: ``python bench/outside_watch.py [--rounds 400] [--watch 64] [--round 300] [--rate 5]
[--responsive 0.6] [--fixed-budget]``

The prober runs round after round at the config's defaults (``outside.*``: rate 5 packets/s,
rounds of 5 minutes, 64 blocks watched per network, unless given) over the shipped KG and KZ
block files, against a transport that answers at once from a table (no packets; time does not
pass, only the prober's own bookkeeping decides what it sends). The table is a made-up but
plausible address space: ``--responsive`` of the blocks have hosts; in those, between 2 % and
40 % of the addresses answer, a fifth of them to a SYN on 443 only. Printed: the round at which
each network's watch set is full (or every block of it tried), and the packets per round during
the warm-up and in steady state, against the round's budget (rate x round): a round over it
would overrun its slot.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import replace
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.outside.blocks import Block, parse_blocks  # noqa: E402
from collector.outside.config import OutsideConfig  # noqa: E402
from collector.outside.pacer import TokenBucket  # noqa: E402
from collector.outside.prober import Prober  # noqa: E402
from collector.outside.sender import PacedSender, Scope  # noqa: E402
from collector.outside.wire import Method, Target  # noqa: E402


class Space:
    """Which address answers which probe, drawn once per block from a seeded generator."""

    def __init__(self, responsive: float, seed: int = 11) -> None:
        self.responsive, self.seed = responsive, seed
        self.blocks: dict[int, tuple[set[int], set[int]]] = {}
        self.hits: dict[int, int] = {}  # packets per block (its base address) since last read

    def _block(self, base: int) -> tuple[set[int], set[int]]:
        if base not in self.blocks:
            rng = random.Random(self.seed * 2**32 + base)
            icmp: set[int] = set()
            tcp: set[int] = set()
            if rng.random() < self.responsive:
                share = rng.uniform(0.02, 0.40)
                for host in range(1, 255):
                    if rng.random() < share:
                        (tcp if rng.random() < 0.2 else icmp).add(host)
            self.blocks[base] = (icmp, tcp)
        return self.blocks[base]

    async def probe(self, target: Target, timeout: float) -> bool:
        address = int(target.address)
        icmp, tcp = self._block(address & ~0xFF)
        self.hits[address & ~0xFF] = self.hits.get(address & ~0xFF, 0) + 1
        host = address & 0xFF
        if target.method is Method.ICMP:
            return host in icmp
        return target.port == 443 and host in tcp


def shipped() -> list[Block]:
    out: list[Block] = []
    for name in ("kg-blocks.txt", "kz-blocks.txt"):
        out += parse_blocks((ROOT / "configs" / "outside" / name).read_text().splitlines())
    return out


async def simulate(config: OutsideConfig, rounds: int, responsive: float,
                   fixed_budget: bool) -> None:
    listed = shipped()
    space = Space(responsive)
    sender = PacedSender(space, Scope.of(listed), TokenBucket(rate=1e9, burst=1e9),
                         max_in_flight=4096)
    settings = config.prober_settings()
    if fixed_budget:  # discovery_share of the round's packets only, whatever the rounds leave
        settings = replace(settings, round_packets=None)
    prober = Prober(listed, sender, settings, rng=random.Random(1))
    budget = int(config.rate * config.round)
    full_at: dict[tuple[str, str], int] = {}
    sent: list[int] = []
    # Per round: packets of the watched blocks' rounds, of discovery in watched blocks, and of
    # discovery in the others (filling the sets).
    split: list[tuple[int, int, int]] = []
    for number in range(1, rounds + 1):
        watched_before = {int(t.block.prefix.network_address)
                          for t in prober.tracks if t.watched}
        space.hits.clear()
        report = await prober.round()
        sent.append(report.sent)
        rounds_part = sum(r.probes for r in report.results)
        inside = sum(n for base, n in space.hits.items() if base in watched_before)
        split.append((rounds_part, inside - rounds_part, report.sent - inside))
        for cc, network, count, watching in prober.watch_counts():
            members = prober.networks[(cc, network)]
            done = watching >= (config.watch_per_network or count) or \
                all(t.rounds_since_discovery is not None for t in members)
            if done:
                full_at.setdefault((cc, network), number)
    print(f"blocks {len(listed)}, watch_per_network {config.watch_per_network}, "
          f"round {config.round:.0f} s, rate {config.rate:g}/s: budget {budget} packets a round")
    print("| network | blocks | watched | full after round |")
    print("|---|---:|---:|---:|")
    for cc, network, count, watching in prober.watch_counts():
        at = full_at.get((cc, network))
        print(f"| {cc} {network} | {count:,} | {watching} | {at if at else 'not yet'} |")
    warm = max(full_at.values()) if len(full_at) == len(prober.networks) else rounds
    steady = sent[warm:] or [0]
    print(f"warm-up: {warm} rounds ({warm * config.round / 3600:.1f} h), packets per round "
          f"mean {mean(sent[:warm]):.0f}, max {max(sent[:warm])}")
    print(f"steady state (rounds {warm + 1}-{rounds}): packets per round mean "
          f"{mean(steady):.0f}, max {max(steady)}, min {min(steady)}; "
          f"{mean(steady) / config.round:.2f} packets/s")
    tail = sent[-100:]
    print(f"last 100 rounds: packets per round mean {mean(tail):.0f}, max {max(tail)}; "
          f"{mean(tail) / config.round:.2f} packets/s")
    parts = split[warm:] or [(0, 0, 0)]
    print("steady state, packets per round: watched blocks' rounds "
          f"{mean(p[0] for p in parts):.0f}, their rediscovery {mean(p[1] for p in parts):.0f}, "
          f"discovery in other blocks {mean(p[2] for p in parts):.0f}")
    over = sum(1 for s in sent if s > budget)
    print(f"rounds over the budget: {over} of {rounds}")
    watched = sum(c[3] for c in prober.watch_counts())
    judged = sum(1 for r in report.results if r.state is not None)
    print(f"last round: {len(report.results)} blocks reported, {judged} judged, "
          f"{watched} watched, {report.sent} packets")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--watch", type=int, default=None, help="watch_per_network")
    parser.add_argument("--round", type=float, default=None, help="round, seconds")
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--responsive", type=float, default=0.6)
    parser.add_argument("--fixed-budget", action="store_true",
                        help="discovery takes discovery_share of the round only")
    args = parser.parse_args()
    config = OutsideConfig()
    changes = {"watch_per_network": args.watch, "round": args.round, "rate": args.rate}
    config = replace(config, **{k: v for k, v in changes.items() if v is not None})
    asyncio.run(simulate(config, args.rounds, args.responsive, args.fixed_budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
