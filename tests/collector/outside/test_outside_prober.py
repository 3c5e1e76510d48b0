"""The prober against an emulated address space: scope, rate, adaptive rounds, discovery.

The transport here is a table of which address answers which probe (no packets); the real
raw-socket transport is exercised by the namespace lab (``tests/lab/test_outside_lab.py``).
Time is virtual: the sender's sleeps advance a clock, so the rate bound is checked exactly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect.outside import Level, OutsideParams
from collector.outside.belief import ROUND_BUDGET, BlockState
from collector.outside.blocks import Block, parse_blocks, parse_opt_out
from collector.outside.pacer import TokenBucket
from collector.outside.prober import (
    DARK_ROUNDS_TO_REPLACE,
    Confirmation,
    Prober,
    ProberSettings,
    RoundReport,
)
from collector.outside.sender import OutOfScope, PacedSender, Scope
from collector.outside.signal import OutsideMonitor, aggregate
from collector.outside.wire import Method, Target


class VirtualTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class World:
    """Which probes get an answer: ICMP-answering and TCP-answering addresses, cut blocks."""

    time: VirtualTime
    icmp: set[ipaddress.IPv4Address] = field(default_factory=set)
    tcp: dict[ipaddress.IPv4Address, int] = field(default_factory=dict)
    cut: set[ipaddress.IPv4Network] = field(default_factory=set)
    sent: list[tuple[float, Target]] = field(default_factory=list)

    async def probe(self, target: Target, timeout: float) -> bool:
        self.sent.append((self.time.now, target))
        await asyncio.sleep(0)
        if any(target.address in net for net in self.cut):
            return False
        if target.method is Method.ICMP:
            return target.address in self.icmp
        return self.tcp.get(target.address) == target.port


def hosts(prefix: str, numbers: range) -> list[ipaddress.IPv4Address]:
    base = ipaddress.IPv4Network(prefix).network_address
    return [base + n for n in numbers]


def build(world: World, blocks: list[Block], rate: float = 50.0, burst: float = 5.0,
          opt_out: tuple[ipaddress.IPv4Network, ...] = (),
          **overrides: Any) -> tuple[Prober, PacedSender]:
    sender = PacedSender(world, Scope.of(blocks, opt_out), TokenBucket(rate=rate, burst=burst),
                         max_in_flight=16, clock=world.time.clock, sleep=world.time.sleep)
    options = replace(ProberSettings(discovery_sample=32, max_responsive=8, timeout=1.0),
                      **overrides)
    prober = Prober(blocks, sender, options,
                    rng=random.Random(7), clock=world.time.clock, wall=world.time.clock,
                    sleep=world.time.sleep)
    return prober, sender


BLOCK_FILE = [
    "KG net-a 198.18.0.0/23",
    "KG net-b 198.18.8.0/24",
    "KZ net-c 198.18.16.0/24   # answers TCP only",
    "KZ net-c 198.18.17.0/24   # nothing answers",
]


def populated_world() -> tuple[World, list[Block]]:
    world = World(VirtualTime())
    for prefix in ("198.18.0.0/24", "198.18.1.0/24", "198.18.8.0/24"):
        world.icmp.update(hosts(prefix, range(1, 255, 2)))
    for address in hosts("198.18.16.0/24", range(2, 255, 2)):
        world.tcp[address] = 443
    return world, parse_blocks(BLOCK_FILE)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_every_probe_stays_inside_the_configured_blocks_and_out_of_the_opt_out_list() -> None:
    world, _ = populated_world()
    opt_out = parse_opt_out(["198.18.1.0/24  # this operator's customer asked not to be probed"])
    blocks = parse_blocks(BLOCK_FILE, opt_out=opt_out)
    # Neighbours of the configured blocks answer too: a prober that strays would find them.
    world.icmp.update(hosts("198.18.2.0/24", range(1, 255)))
    world.icmp.update(hosts("198.18.1.0/24", range(1, 255)))
    prober, _ = build(world, blocks)

    async def rounds() -> None:
        for _ in range(5):
            await prober.round()

    run(rounds())
    assert len(world.sent) > 100
    allowed = [b.prefix for b in blocks]
    assert all(any(t.address in net for net in allowed) for _, t in world.sent)
    assert not any(t.address in opt_out[0] for _, t in world.sent)


@given(address=st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_the_sender_refuses_any_address_outside_its_scope(address: int) -> None:
    blocks = parse_blocks(["KG net-a 198.18.0.0/23"])
    opt_out = (ipaddress.IPv4Network("198.18.1.128/28"),)
    world = World(VirtualTime())
    sender = PacedSender(world, Scope.of(blocks, opt_out), TokenBucket(rate=1e6, burst=10),
                         clock=world.time.clock, sleep=world.time.sleep)
    target = Target(ipaddress.IPv4Address(address), Method.ICMP)
    inside = (ipaddress.IPv4Address(address) in ipaddress.IPv4Network("198.18.0.0/23")
              and ipaddress.IPv4Address(address) not in opt_out[0])

    async def send() -> None:
        await sender.probe(target, 1.0)

    if inside:
        run(send())
        assert [t for _, t in world.sent] == [target]
    else:
        with pytest.raises(OutOfScope):
            run(send())
        assert world.sent == []


@pytest.mark.parametrize(("rate", "burst"), [(5.0, 1.0), (5.0, 5.0), (40.0, 10.0)])
def test_the_packet_rate_never_exceeds_the_bucket(rate: float, burst: float) -> None:
    world, blocks = populated_world()
    prober, sender = build(world, blocks, rate=rate, burst=burst)

    async def rounds() -> None:
        for _ in range(3):
            await prober.round()

    run(rounds())
    times = [t for t, _ in world.sent]
    assert len(times) == sender.counters.sent > 200
    assert times == sorted(times)
    # In any stretch [t_i, t_j] at most burst + rate * (t_j - t_i) packets leave.
    for i in range(len(times)):
        for j in range(i, min(len(times), i + 60)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 1e-6
    # And the bucket is not idle: the whole run takes about as long as the rate requires.
    assert times[-1] - times[0] == pytest.approx((len(times) - burst) / rate, rel=0.01)


async def test_a_block_that_answers_costs_one_probe_per_round_after_discovery() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks)
    first = await prober.round()
    second = await prober.round()
    by_prefix = {str(r.block.prefix): r for r in second.results}
    for prefix in ("198.18.0.0/24", "198.18.1.0/24", "198.18.8.0/24", "198.18.16.0/24"):
        assert by_prefix[prefix].state is BlockState.UP
        assert by_prefix[prefix].probes == 1
        assert by_prefix[prefix].responsive == 8
    assert by_prefix["198.18.17.0/24"].state is None
    assert second.sent < first.sent


async def test_tcp_only_addresses_are_found_and_probed_by_syn() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks)
    await prober.round()
    track = next(t for t in prober.tracks if str(t.block.prefix) == "198.18.16.0/24")
    assert track.responsive
    assert {(t.method, t.port) for t in track.responsive} == {(Method.TCP, 443)}


async def test_a_cut_block_goes_down_within_one_round_and_comes_back() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks)
    for _ in range(3):
        await prober.round()
    world.cut.add(ipaddress.IPv4Network("198.18.8.0/24"))
    report = await prober.round()
    cut = next(r for r in report.results if str(r.block.prefix) == "198.18.8.0/24")
    assert cut.state is BlockState.DOWN
    assert 1 < cut.probes <= ROUND_BUDGET
    # While down, the round costs one probe (silence agrees with "down") and no discovery.
    before = len(world.sent)
    report = await prober.round()
    cut = next(r for r in report.results if str(r.block.prefix) == "198.18.8.0/24")
    assert cut.state is BlockState.DOWN and cut.probes == 1
    sent_to_cut = [t for _, t in world.sent[before:] if t.address in cut.block.prefix]
    assert len(sent_to_cut) == 1
    world.cut.clear()
    report = await prober.round()
    back = next(r for r in report.results if str(r.block.prefix) == "198.18.8.0/24")
    assert back.state is BlockState.UP


async def test_a_single_lost_packet_does_not_take_a_block_down() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks)
    for _ in range(3):
        await prober.round()
    track = next(t for t in prober.tracks if str(t.block.prefix) == "198.18.8.0/24")
    lost = track.responsive[track.cursor % len(track.responsive)]
    world.icmp.discard(lost.address)
    report = await prober.round()
    result = next(r for r in report.results if r.block == track.block)
    assert result.state is BlockState.UP
    assert result.probes >= 2


async def test_an_empty_block_is_rediscovered_only_every_few_rounds() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks, rediscover_every=3)
    empty = ipaddress.IPv4Network("198.18.17.0/24")
    per_round = []
    for _ in range(7):
        before = len(world.sent)
        await prober.round()
        per_round.append(sum(1 for _, t in world.sent[before:] if t.address in empty))
    # Each pass tries 32 addresses by ICMP and then TCP 80 and 443: 96 probes.
    assert per_round == [96, 0, 0, 96, 0, 0, 96]


async def test_signal_and_verdict_name_the_network_that_went_dark() -> None:
    world = World(VirtualTime())
    lines = [f"KG net-a 198.18.{i}.0/24" for i in range(6)]
    lines += [f"KG net-b 198.18.{i}.0/24" for i in range(10, 16)]
    blocks = parse_blocks(lines)
    for block in blocks:
        world.icmp.update(hosts(str(block.prefix), range(1, 255, 4)))
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0)
    monitor = OutsideMonitor(OutsideParams(min_baseline=3, min_history=3))

    async def verdicts() -> dict[tuple[str, str], Level]:
        report = await prober.round()
        return {(v.group.country, v.group.network): v.verdict.level
                for v in monitor.observe(report)}

    for _ in range(3):  # warm-up: min_history rounds
        assert set((await verdicts()).values()) == {Level.INSUFFICIENT}
    for _ in range(3):
        assert set((await verdicts()).values()) == {Level.NONE}
    world.cut.update(ipaddress.IPv4Network(f"198.18.{i}.0/24") for i in range(6))
    cut = await verdicts()
    assert cut[("KG", "net-a")] is Level.CRITICAL
    assert cut[("KG", "net-b")] is Level.NONE
    # Half the country's blocks: below 0.8 of the median, not below 0.5 of it.
    assert cut[("KG", "")] is Level.WARNING


async def test_aggregate_counts_per_network_and_country() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks)
    report = await prober.round()
    counts = {(g.country, g.network): (g.up, g.down, g.uncertain, g.unjudged)
              for g in aggregate(report.results)}
    assert counts == {
        ("KG", ""): (3, 0, 0, 0),
        ("KG", "net-a"): (2, 0, 0, 0),
        ("KG", "net-b"): (1, 0, 0, 0),
        ("KZ", ""): (1, 0, 0, 1),
        ("KZ", "net-c"): (1, 0, 0, 1),
    }


async def test_discovery_is_spread_over_rounds_when_bounded() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks, max_discovery_blocks=2)
    tried = []
    for _ in range(3):
        report = await prober.round()
        tried.append(sum(1 for t in prober.tracks if t.rounds_since_discovery is not None))
        judged = sum(1 for r in report.results if r.state is not None)
        assert judged <= tried[-1]
    # Two new blocks per round, never-tried blocks first, until all five have had a pass.
    assert tried == [2, 4, 5]
    assert all(r.state is BlockState.UP for r in report.results
               if str(r.block.prefix) != "198.18.17.0/24")


async def test_an_address_that_went_away_leaves_the_responsive_set() -> None:
    world, blocks = populated_world()
    prober, _ = build(world, blocks, rediscover_every=2)
    await prober.round()
    track = next(t for t in prober.tracks if str(t.block.prefix) == "198.18.8.0/24")
    gone = track.responsive[3]
    world.icmp.discard(gone.address)
    states = []
    for _ in range(40):
        report = await prober.round()
        states += [r.state for r in report.results if r.block == track.block]
    assert gone not in track.responsive
    assert len(track.responsive) == 8  # discovery found a replacement
    assert set(states) == {BlockState.UP}


def many_blocks(world: World, count: int) -> list[Block]:
    lines = [f"KZ big 198.18.{i}.0/24" for i in range(count)]
    for i in range(count):
        world.icmp.update(hosts(f"198.18.{i}.0/24", range(1, 255, 3)))
    return parse_blocks(lines)


async def watched_big_network(count: int = 40, sample: int = 10
                              ) -> tuple[World, list[Block], Prober]:
    """``count`` blocks of one network answering ICMP, a confirmation sample of ``sample``,
    two rounds in: every block judged up."""
    world = World(VirtualTime())
    blocks = many_blocks(world, count)
    prober, _ = build(world, blocks, rate=1000.0, burst=20.0, confirm_sample=sample)
    for _ in range(2):
        await prober.round()
    return world, blocks, prober


async def test_a_confirmation_reprobes_a_bounded_sample_of_the_dark_blocks() -> None:
    world, blocks, prober = await watched_big_network()
    world.cut.update(ipaddress.IPv4Network(f"198.18.{i}.0/24") for i in range(30))
    report = await prober.round()
    assert sum(r.state is BlockState.DOWN for r in report.results) == 30
    # Still cut: ten of the thirty dark blocks are asked again, one silent probe each by
    # every method (one ICMP echo and two SYNs), and none came back.
    before = len(world.sent)
    dark = await prober.confirm("KZ", "big")
    assert (dark.up_before, dark.dark, dark.sampled, dark.recovered) == (10, 30, 10, 0)
    assert dark.blocks_up == 10 and dark.blocks == 40
    assert dark.sent == len(world.sent) - before == 30
    assert {t.address for _, t in world.sent[before:]} <= {
        a for b in blocks[:30] for a in b.prefix.hosts()}
    # Back: the sample answers, and its share is applied to all thirty.
    world.cut.clear()
    back = await prober.confirm("KZ", "big")
    assert (back.sampled, back.recovered, back.blocks_up) == (10, 10, 40)
    unknown = await prober.confirm("KZ", "nothing")
    assert (unknown.blocks, unknown.sampled, unknown.sent) == (0, 0, 0)


async def test_a_confirmation_finds_addresses_that_now_answer_tcp_only() -> None:
    world = World(VirtualTime())
    blocks = parse_blocks(["KG net-a 198.18.0.0/24"])
    world.icmp.update(hosts("198.18.0.0/24", range(1, 255, 2)))
    prober, _ = build(world, blocks, tcp_ports=(80, 443))
    await prober.round()
    [track] = prober.tracks
    assert {t.method for t in track.responsive} == {Method.ICMP}
    # The border drops ICMP echo now; the hosts still answer a SYN to 443.
    for address in list(world.icmp):
        world.tcp[address] = 443
    world.icmp.clear()
    assert (await prober.round()).results[0].state is BlockState.DOWN
    result = await prober.confirm("KG", "net-a")
    assert (result.sampled, result.recovered) == (1, 1)
    assert {(t.method, t.port) for t in track.responsive} == {(Method.TCP, 443)}
    report = await prober.round()
    assert report.results[0].state is BlockState.UP and report.sent == 1


async def test_a_way_that_stopped_answering_is_relearned_on_every_dark_block() -> None:
    # Forty blocks, a confirmation sample of ten: when the border starts dropping ICMP echo
    # while the hosts answer a SYN, the sample finds the new way; the thirty dark blocks
    # outside it must learn it too, or the network stays below its baseline for good.
    world, blocks, prober = await watched_big_network()
    for address in list(world.icmp):
        world.tcp[address] = 443
    world.icmp.clear()
    report = await prober.round()
    assert sum(r.state is BlockState.DOWN for r in report.results) == 40
    result = await prober.confirm("KZ", "big")
    assert (result.dark, result.sampled, result.recovered, result.blocks_up) == (40, 40, 40, 40)
    after = await prober.round()
    assert all(r.state is BlockState.UP for r in after.results)
    assert after.sent == 40  # one SYN per block: every block probes the way that works
    # A real cut shifts no way: the confirmation stays a sample of ten.
    world.cut.update(b.prefix for b in blocks)
    await prober.round()
    cut = await prober.confirm("KZ", "big")
    assert (cut.dark, cut.sampled, cut.recovered) == (40, 10, 0)


async def test_run_confirms_what_the_hook_names_after_confirm_after() -> None:
    world, blocks = populated_world()
    # run() waits in real time: a slot of 0.3 s, the confirmation 0.1 s after the round.
    prober, _ = build(world, blocks, round_seconds=0.3, confirm_after=0.1)
    stop = asyncio.Event()
    rounds: list[float] = []
    confirmed: list[tuple[str, str, int, float]] = []

    async def on_round(report: RoundReport) -> None:
        rounds.append(time.monotonic())
        if len(rounds) == 2:
            world.cut.add(ipaddress.IPv4Network("198.18.8.0/24"))

    def hook(report: RoundReport) -> list[tuple[str, str]]:
        return [("KG", "net-b")] if len(rounds) == 3 else []

    async def on_confirm(result: Confirmation) -> None:
        confirmed.append((result.country, result.network, result.dark, time.monotonic()))
        stop.set()

    await asyncio.wait_for(prober.run(on_round, stop, hook, on_confirm), 10)
    assert len(rounds) == 3
    [(cc, network, dark, at)] = confirmed
    assert (cc, network, dark) == ("KG", "net-b", 1)
    assert at - rounds[-1] >= 0.1


def network_world(networks: dict[str, int], empty_every: int = 0) -> tuple[World, list[Block]]:
    """Networks of consecutive /24s (net name -> blocks), 198.18.0.0 onwards; every third
    address answers ICMP except in every ``empty_every``-th block, where nothing answers."""
    world = World(VirtualTime())
    lines, start = [], 0
    for name, count in networks.items():
        for i in range(start, start + count):
            prefix = f"198.18.{i}.0/24" if i < 256 else f"198.19.{i - 256}.0/24"
            lines.append(f"KZ {name} {prefix}")
            if not (empty_every and i % empty_every == 0):
                world.icmp.update(hosts(prefix, range(1, 255, 3)))
        start += count
    return world, parse_blocks(lines)


def block_of(target: Target) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{target.address}/24", strict=False)


def watched(prober: Prober, network: str) -> list[ipaddress.IPv4Network]:
    return [t.block.prefix for t in prober.networks[("KZ", network)] if t.watched]


def answering(world: World, prober: Prober, network: str) -> list[ipaddress.IPv4Network]:
    """The network's blocks with hosts, in the prober's fixed order."""
    return [t.block.prefix for t in prober.networks[("KZ", network)]
            if any(a in t.block.prefix for a in world.icmp)]


async def test_a_network_over_the_cap_is_probed_only_in_its_watch_set() -> None:
    world, blocks = network_world({"big": 40, "small": 3}, empty_every=3)
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=6)
    for _ in range(8):
        report = await prober.round()
    # The first six blocks of the fixed order that answer, whichever round found them.
    assert watched(prober, "big") == answering(world, prober, "big")[:6]
    # A network under the cap watches every block that can be judged.
    assert watched(prober, "small") == answering(world, prober, "small")
    assert len(watched(prober, "small")) == 2
    assert prober.watch_counts() == [("KZ", "big", 40, 6), ("KZ", "small", 3, 2)]
    before = len(world.sent)
    for _ in range(20):
        report = await prober.round()
        states = [r.state for r in report.results if r.block.network == "big"]
        assert states == [BlockState.UP] * 6
        assert {r.block.prefix for r in report.results} == \
            {*watched(prober, "big"), *watched(prober, "small")}
    # Every packet of those rounds went to a watched block (the small network's blocks where
    # nothing answers are tried again every few rounds: its set is not full).
    small = {b.prefix for b in blocks if b.network == "small"}
    allowed = {*watched(prober, "big"), *small}
    assert len(world.sent) - before >= 20 * 8
    assert all(any(t.address in net for net in allowed) for _, t in world.sent[before:])
    # Blocks beyond the watch set never got a single packet.
    tried = {block_of(t) for _, t in world.sent}
    order = [t.block.prefix for t in prober.networks[("KZ", "big")]]
    last = order.index(watched(prober, "big")[-1])
    assert tried & set(order) == set(order[:last + 1])


async def test_discovery_fills_every_network_in_turn() -> None:
    world, blocks = network_world({"a": 30, "b": 30, "c": 30})
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=4,
                      max_discovery_blocks=6)
    await prober.round()
    # Six passes in the round, two per network, never more than the room left in a set.
    assert [c[3] for c in prober.watch_counts()] == [2, 2, 2]
    await prober.round()
    assert [c[3] for c in prober.watch_counts()] == [4, 4, 4]
    tried = sum(1 for t in prober.tracks if t.rounds_since_discovery is not None)
    await prober.round()
    # Full sets: no block beyond them is tried.
    assert sum(1 for t in prober.tracks if t.rounds_since_discovery is not None) == tried == 12


async def test_the_discovery_budget_takes_what_the_watched_rounds_leave() -> None:
    world, blocks = network_world({"a": 60, "b": 60})
    # 960 packets a round; a pass costs at most 32 x 3 = 96: half the round is 5 passes, all
    # of it 10 while no block is watched yet.
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=30,
                      round_packets=960, discovery_share=0.5)
    limits = []
    for _ in range(4):
        limits.append(prober._discovery_limit())
        await prober.round()
    assert limits[0] == 10
    # Watched blocks take their 1.5 packets from the rounds' half: 10 watched leave 465.
    assert limits[1] == (480 + 480 - 15) // 96 == 9
    assert limits == sorted(limits, reverse=True) and limits[-1] >= 5
    prober.settings = replace(prober.settings, round_packets=None, max_discovery_blocks=3)
    assert prober._discovery_limit() == 3


async def test_a_watched_block_whose_hosts_vanish_is_replaced() -> None:
    world, blocks = network_world({"big": 20})
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=5)
    for _ in range(3):
        await prober.round()
    order = answering(world, prober, "big")
    assert watched(prober, "big") == order[:5]
    gone = order[2]
    world.icmp -= set(gone.hosts())  # the customer left: the block is dark, the network is up
    for round_number in range(1, DARK_ROUNDS_TO_REPLACE + 1):
        report = await prober.round()
        if round_number < DARK_ROUNDS_TO_REPLACE:
            assert gone in watched(prober, "big")
            assert {r.block.prefix: r.state for r in report.results}[gone] is BlockState.DOWN
    assert gone not in watched(prober, "big")
    # The next block of the order takes its place, after its discovery in the next round.
    report = await prober.round()
    assert watched(prober, "big") == [*order[:2], *order[3:6]]
    assert [r.state for r in report.results] == [BlockState.UP] * 5
    track = next(t for t in prober.tracks if t.block.prefix == gone)
    assert track.responsive == [] and not track.watched


@pytest.mark.parametrize("cut_share", [1.0, 0.5])
async def test_a_cut_networks_watched_blocks_are_kept_and_the_cut_is_seen(
        cut_share: float) -> None:
    world, blocks = network_world({"big": 40, "other": 40})
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=8)
    monitor = OutsideMonitor(OutsideParams(min_baseline=3, min_history=3))
    for _ in range(6):
        monitor.observe(await prober.round())
    before = watched(prober, "big")
    cut = before[:int(8 * cut_share)]
    world.cut.update(cut)
    sent_from = len(world.sent)
    for _ in range(3 * DARK_ROUNDS_TO_REPLACE):
        report = await prober.round()
        verdicts = {v.group.network: v for v in monitor.observe(report)}
        big = verdicts["big"]
        assert big.group.up == 8 - len(cut) and big.group.judged == 8
        assert big.verdict.level is (Level.CRITICAL if cut_share > 0.5 else Level.WARNING)
        assert verdicts["other"].verdict.level is Level.NONE
    # Not one block replaced, and no packet to the network's blocks beyond its set.
    assert watched(prober, "big") == before
    big_blocks = {b.prefix for b in blocks if b.network == "big"}
    hit = {block_of(t) for _, t in world.sent[sent_from:]}
    assert hit & big_blocks == set(before)
    world.cut.clear()
    report = await prober.round()
    assert sum(1 for r in report.results
               if r.block.network == "big" and r.state is BlockState.UP) == 8


async def test_watch_per_network_zero_probes_every_block_every_round() -> None:
    world, blocks = network_world({"big": 40}, empty_every=4)
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=0)
    for _ in range(2):
        report = await prober.round()
    assert len(report.results) == 40
    assert sum(1 for r in report.results if r.state is BlockState.UP) == 30
    assert sum(1 for r in report.results if r.state is None) == 10
    before = len(world.sent)
    await prober.round()
    hit = {block_of(t) for _, t in world.sent[before:]}
    assert len(hit) == 30  # one probe to each block that answers
    assert prober.watch_counts() == [("KZ", "big", 40, 40)]


def test_a_negative_watch_per_network_is_refused() -> None:
    with pytest.raises(ValueError, match="watch_per_network must be >= 0"):
        ProberSettings(watch_per_network=-1)


async def test_an_empty_block_of_a_network_under_its_cap_is_swept_then_rarely_tried() -> None:
    world, blocks = network_world({"small": 6}, empty_every=3)
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=10,
                      rediscover_every=1)
    empty = ipaddress.IPv4Network("198.18.0.0/24")
    per_round = []
    for _ in range(34):
        before = len(world.sent)
        await prober.round()
        per_round.append(sum(1 for _, t in world.sent[before:] if t.address in empty))
    assert prober.watch_counts() == [("KZ", "small", 6, 4)]
    # Its set is not full, so the two blocks where nothing answers are tried again (32
    # addresses a pass by ICMP and two SYNs): every round until all 254 were tried (eight
    # passes), then once every 24 rounds.
    assert per_round == [96] * 8 + [0] * 23 + [96] + [0] * 2


async def test_run_reports_the_watched_blocks_before_discovery_sends() -> None:
    world, blocks = network_world({"big": 40})
    prober, _ = build(world, blocks, rate=5000.0, burst=50.0, watch_per_network=6,
                      max_discovery_blocks=2, round_seconds=0.2)
    stop = asyncio.Event()
    seen: list[tuple[int, int, int, int]] = []  # results, probes in them, report.sent, all sent

    async def on_round(report: RoundReport) -> None:
        seen.append((len(report.results), sum(r.probes for r in report.results),
                     report.sent, len(world.sent)))
        if len(seen) == 6:
            stop.set()

    await asyncio.wait_for(prober.run(on_round, stop), 10)
    # The first report comes before any packet: nothing is watched yet. Then two blocks join
    # per round (their discovery came after the report before), and each report counts only
    # the watched blocks' probes.
    assert [s[0] for s in seen] == [0, 2, 4, 6, 6, 6]
    assert seen[0][3] == 0
    assert all(probes == sent for _, probes, sent, _ in seen)
    # Discovery's packets came between the reports: 2 blocks x 32 addresses by ICMP at least.
    assert seen[1][3] - seen[0][3] - seen[1][2] >= 2 * 32


async def test_a_network_is_ready_for_a_baseline_once_its_watch_set_is_settled() -> None:
    world, blocks = network_world({"big": 40, "small": 3})
    prober, _ = build(world, blocks, rate=1000.0, burst=50.0, watch_per_network=6,
                      max_discovery_blocks=4)
    await prober.round()
    # Two passes each: the small network has one block never tried, the big one four to find.
    assert prober.ready() == set()
    await prober.round()
    assert prober.ready() == {("KZ", "small")}
    await prober.round()
    assert prober.ready() == {("KZ", "small"), ("KZ", "big"), ("KZ", "")}
