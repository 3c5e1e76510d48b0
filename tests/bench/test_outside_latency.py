"""The outside-in latency bench's simulation is honest: its loop's time moves only as the code
under test waits (timers in order, never a real wait, never a silent hang), the rate bucket
holds in virtual time (a round of N probes at rate r takes at least (N - burst) / r), the
simulated Internet is seeded and does what a cut and a filter say, and a cut on the shipped KG
blocks opens an event of that network only, no sooner than the chain of waits allows."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest

from bench import outside_latency as bench
from collector.detect.outside_in import OutsideReading
from collector.outside.blocks import Block
from collector.outside.service import OutsideService
from collector.outside.wire import Method, Target


def test_the_virtual_loop_fires_timers_in_order_without_waiting() -> None:
    fired: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        fired.append((name, asyncio.get_running_loop().time()))

    async def main() -> float:
        await asyncio.gather(sleeper("day", 86400.0), sleeper("hour", 3600.0),
                             sleeper("timeout", 3.0))
        return asyncio.get_running_loop().time()

    began = time.perf_counter()
    end = bench.run_virtual(main())
    assert fired == [("timeout", 3.0), ("hour", 3600.0), ("day", 86400.0)]
    assert end == 86400.0
    assert time.perf_counter() - began < 60.0  # a virtual day, not a real one


def test_a_loop_with_nothing_scheduled_raises_instead_of_hanging() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nothing will ever resolve it

    with pytest.raises(RuntimeError, match="wait forever"):
        bench.run_virtual(main())


def kg_blocks() -> list[Block]:
    return OutsideService(bench.shipped_blocks_config(["kg-blocks.txt"])).blocks


def test_the_world_is_seeded_and_does_what_a_cut_and_a_filter_say() -> None:
    blocks = kg_blocks()
    one, same, other = bench.World(blocks, 3), bench.World(blocks, 3), bench.World(blocks, 4)
    assert one.lives == same.lives and one.lives != other.lives
    dark = sum(1 for life in one.lives.values() if life.density == 0) / len(one.lives)
    assert 0.25 < dark < 0.45  # World.DARK is 0.35
    # A block whose hosts answer both ways, and its live hosts.
    key, life = next((k, v) for k, v in one.lives.items() if v.icmp and v.tcp
                     and v.density > 0.3)
    hosts = [ipaddress.IPv4Address((key << 8) + i) for i in range(1, 255)
             if one.live_host((key << 8) + i, life)]
    icmp = [Target(h, Method.ICMP) for h in hosts]
    tcp = [Target(h, Method.TCP, 443) for h in hosts]
    assert sum(map(one.answers, icmp)) > 0.8 * len(hosts)
    one.icmp_filtered.add(key)
    assert not any(map(one.answers, icmp)) and sum(map(one.answers, tcp)) > 0.8 * len(hosts)
    one.cut.add(key)
    assert not any(map(one.answers, tcp))
    # An address that is no live host never answers.
    silent = next(ipaddress.IPv4Address((key << 8) + i) for i in range(1, 255)
                  if not one.live_host((key << 8) + i, life))
    assert not any(one.answers(Target(silent, Method.ICMP)) for _ in range(50))


def test_the_rate_bucket_holds_in_virtual_time() -> None:
    # The service's first rounds over the KG blocks: between two rounds' starts, thousands of
    # probes (discovery of as many blocks as a round's packets allow). That time is at least
    # (probes - burst) / rate virtual seconds, unanswered probes cost their timeout, and a
    # reading carries the virtual wall time of its round's start.
    config = bench.shipped_blocks_config(["kg-blocks.txt"], rate=50.0, burst=10.0,
                                         discovery_share=1.0)

    async def main() -> list[tuple[float, int, int, list[float]]]:
        world = bench.World(kg_blocks(), 1)
        transport = bench.SimTransport(world)
        loop = asyncio.get_running_loop()
        # Per round's report: its start, the probes and answers until then, its readings' times.
        reports: list[tuple[float, int, int, list[float]]] = []

        def readings(batch: list[OutsideReading]) -> None:
            assert service.report is not None
            reports.append((service.report.started, transport.sent,
                            service.counters.answered, [r.t for r in batch]))

        service = OutsideService(config, make_transport=lambda: transport,
                                 wall=lambda: bench.EPOCH + loop.time(), on_readings=readings)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        while len(reports) < 3:
            await asyncio.sleep(1.0)
        stop.set()
        await task
        return reports

    reports = bench.run_virtual(main())
    assert reports[0][0] == bench.EPOCH
    # (The first report has no watched block yet, so no reading.)
    assert [bool(stamps) for _, _, _, stamps in reports] == [False, True, True]
    for started, _, _, stamps in reports:
        assert set(stamps) <= {started}
    (first, sent0, answered0, _), (second, sent1, answered1, _) = reports[0], reports[1]
    took, sent = second - first, sent1 - sent0
    assert sent > 5000  # 16 addresses per block, by ICMP and 2 ports
    assert took >= (sent - config.burst) / config.rate
    # A probe without a reply holds one of max_in_flight slots for its whole timeout, so at
    # this rate the slots bound the pace: silent x timeout / max_in_flight at least.
    silent = sent - (answered1 - answered0)
    assert took >= silent * config.timeout / config.max_in_flight
    pace = min(config.rate, config.max_in_flight / config.timeout)
    assert took <= max(config.round, 1.1 * sent / pace + config.timeout)  # paced, not stalled


def test_a_cut_of_a_kg_network_opens_its_event_after_the_chain_of_waits() -> None:
    config = bench.shipped_blocks_config(["kg-blocks.txt"])
    report = bench.run_virtual(bench.simulate(config, ["KG|AS41750"], cuts=2, halves=0,
                                              days=0.0, seed=5))
    assert report.blocks == 471 and 0 < report.judged < 471
    assert len(report.cuts) == 2
    for result in report.cuts:
        assert result.latency is not None and result.false == []
        assert result.to_round is not None and result.to_confirmation is not None
        # The event needs the round's verdict, the confirmation after confirm_after and its
        # probes' timeout, then a pipeline run; and no more than the bench's limit.
        assert 0 < result.to_round < result.to_confirmation <= result.latency
        assert result.to_confirmation - result.to_round >= config.confirm_after + config.timeout
        assert result.latency <= result.to_confirmation + 30.0  # detection.interval
        assert result.latency < 6 * max(config.round, max(report.round_seconds))
    # Every round's length is a real one: the steady round over the judged blocks at rate 5.
    assert min(report.round_seconds) >= report.judged / config.rate / 2
    assert "KG|AS41750" in bench.render(report)
