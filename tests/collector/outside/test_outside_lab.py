"""The outside-in prober with real raw sockets against an emulated country in namespaces.

Each test builds its own lab (``tests.helpers.outsidelab``), runs the prober on its schedule
from the collector's namespace (rounds of one second instead of ten minutes), changes the
border router at a given round and checks the verdict of every round after it: the right
network at the right level in the first round after the change, nothing else.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from collector.detect.outside import Level, OutsideParams
from collector.outside.belief import BlockState
from collector.outside.blocks import parse_blocks
from collector.outside.pacer import TokenBucket
from collector.outside.prober import Prober, ProberSettings, RoundReport
from collector.outside.sender import PacedSender, Scope
from collector.outside.signal import GroupVerdict, OutsideMonitor
from collector.outside.wire import Method, RawTransport
from tests.helpers.outsidelab import BLOCK_FILE, NET_A, NET_A_EMPTY, NET_B, TCP_ONLY, OutsideLab

pytestmark = pytest.mark.lab

WARM_UP = 4
"""Rounds before any change: discovery, then the monitor's min_history."""

Levels = dict[str, Level]


def levels(verdicts: list[GroupVerdict]) -> Levels:
    return {v.group.network or v.group.country: v.verdict.level for v in verdicts}


async def drive(lab: OutsideLab, rounds: int,
                actions: dict[int, Callable[[], None]]) -> tuple[list[Levels], list[RoundReport]]:
    """Run the prober on its schedule for ``rounds`` rounds; ``actions[i]`` runs after round i."""
    blocks = parse_blocks(BLOCK_FILE)
    settings = ProberSettings(round_seconds=1.0, timeout=1.0, discovery_sample=96,
                              max_responsive=8)
    monitor = OutsideMonitor(OutsideParams(min_baseline=2, min_history=3))
    seen: list[Levels] = []
    reports: list[RoundReport] = []
    stop = asyncio.Event()
    async with RawTransport(lab.collector_socket) as transport:
        sender = PacedSender(transport, Scope.of(blocks), TokenBucket(rate=2000, burst=20),
                             max_in_flight=256)
        prober = Prober(blocks, sender, settings, rng=random.Random(3))

        async def on_round(report: RoundReport) -> None:
            reports.append(report)
            seen.append(levels(monitor.observe(report)))
            action = actions.get(len(reports) - 1)
            if action is not None:
                await asyncio.to_thread(action)
            if len(reports) == rounds:
                stop.set()

        await asyncio.wait_for(prober.run(on_round, stop), timeout=rounds * 20)
    return seen, reports


def quiet(seen: list[Levels]) -> bool:
    return all(level in (Level.NONE, Level.INSUFFICIENT) for lv in seen for level in lv.values())


async def test_baseline_blocks_are_found_by_icmp_or_tcp_and_all_up(lab: OutsideLab) -> None:
    seen, reports = await drive(lab, WARM_UP, {})
    last = {str(r.block.prefix): r for r in reports[-1].results}
    for prefix in [*NET_A, *NET_B]:
        assert last[prefix].state is BlockState.UP, prefix
        assert last[prefix].responsive == 8
    assert last[NET_A_EMPTY].state is None
    assert seen[-1] == {"KZ": Level.NONE, "net-a": Level.NONE, "net-b": Level.NONE}
    # Once every block is known, a round costs one probe per judged block.
    assert reports[-1].sent == 16


async def test_a_shutdown_of_one_network_is_critical_for_it_alone(lab: OutsideLab) -> None:
    seen, _ = await drive(lab, WARM_UP + 3, {WARM_UP - 1: lambda: lab.cut("198.18.0.0/20")})
    assert quiet(seen[:WARM_UP])
    for after in seen[WARM_UP:]:
        assert after == {"KZ": Level.WARNING, "net-a": Level.CRITICAL, "net-b": Level.NONE}


async def test_a_partial_shutdown_is_a_warning_for_that_network(lab: OutsideLab) -> None:
    half = ["198.18.16.0/24", "198.18.17.0/24", *TCP_ONLY[:2]]
    seen, _ = await drive(lab, WARM_UP + 3, {WARM_UP - 1: lambda: lab.cut(*half)})
    assert quiet(seen[:WARM_UP])
    for after in seen[WARM_UP:]:
        # Four of net-b's eight blocks (two answering ICMP, two TCP only): half the network,
        # a quarter of the country.
        assert after == {"KZ": Level.WARNING, "net-a": Level.NONE, "net-b": Level.WARNING}


async def test_the_network_comes_back_and_the_verdict_clears(lab: OutsideLab) -> None:
    seen, _ = await drive(lab, WARM_UP + 4, {
        WARM_UP - 1: lambda: lab.cut("198.18.0.0/20"),
        WARM_UP + 1: lambda: lab.restore("198.18.0.0/20")})
    assert seen[WARM_UP]["net-a"] is Level.CRITICAL
    assert all(lv["net-a"] is Level.NONE for lv in seen[WARM_UP + 2:])


async def test_a_quiet_hour_with_random_losses_raises_nothing(lab: OutsideLab) -> None:
    rng = random.Random(11)

    def lose_a_host() -> None:
        role = rng.choice(["neta", "netb"])
        lab.remove_host(role, rng.choice(lab.hosts[role]))

    actions: dict[int, Callable[[], None]] = {WARM_UP - 1: lambda: lab.loss(3)}
    actions.update({i: lose_a_host for i in range(WARM_UP, WARM_UP + 12, 3)})
    seen, reports = await drive(lab, WARM_UP + 12, actions)
    assert quiet(seen)
    assert all(lv["net-a"] is Level.NONE for lv in seen[WARM_UP:])
    # The losses were real: some rounds needed more than one probe for a block.
    assert any(r.sent > 16 for r in reports[WARM_UP:])


def test_tcp_only_blocks_are_probed_by_syn(lab: OutsideLab) -> None:
    async def go() -> list[Method]:
        blocks = parse_blocks(BLOCK_FILE)
        async with RawTransport(lab.collector_socket) as transport:
            sender = PacedSender(transport, Scope.of(blocks), TokenBucket(rate=2000, burst=20))
            prober = Prober(blocks, sender, ProberSettings(timeout=1.0, discovery_sample=32),
                            rng=random.Random(5))
            await prober.round()
        return [t.method for track in prober.tracks if str(track.block.prefix) in TCP_ONLY
                for t in track.responsive]

    methods = asyncio.run(go())
    assert methods and set(methods) == {Method.TCP}
