"""The prober's saved state (``collector.outside.prober_state``): a restarted prober probes what
the old one would have, never anything outside its configured blocks, and refuses a damaged
document whole. Same emulated address space and virtual time as ``test_outside_prober``."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collector.outside.belief import BlockState
from collector.outside.blocks import Block, parse_blocks, parse_opt_out
from collector.outside.config import OutsideConfig, resolve
from collector.outside.pacer import TokenBucket
from collector.outside.prober import Prober, ProberSettings
from collector.outside.prober_state import STATE_NAME, load_json, to_json
from collector.outside.sender import PacedSender, Scope
from collector.outside.service import OutsideService
from collector.outside.wire import Method, Target
from tests.collector.outside.test_outside_prober import (
    VirtualTime,
    World,
    block_of,
    hosts,
    network_world,
    watched,
)

SETTINGS = ProberSettings(discovery_sample=32, max_responsive=8, timeout=1.0,
                          watch_per_network=6, max_discovery_blocks=8)


def copy(world: World) -> World:
    """The same address space, with its own clock and record of probes."""
    return World(VirtualTime(), icmp=set(world.icmp), tcp=dict(world.tcp), cut=set(world.cut))


def prober(world: World, blocks: list[Block], seed: int,
           opt_out: tuple[ipaddress.IPv4Network, ...] = (),
           settings: ProberSettings = SETTINGS) -> Prober:
    sender = PacedSender(world, Scope.of(blocks, opt_out), TokenBucket(rate=1000.0, burst=50.0),
                         max_in_flight=16, clock=world.time.clock, sleep=world.time.sleep)
    return Prober(blocks, sender, settings, rng=random.Random(seed), clock=world.time.clock,
                  wall=world.time.clock, sleep=world.time.sleep)


def knowledge(p: Prober) -> dict[str, Any]:
    """Everything the prober's next rounds depend on, per block, and its orders."""
    return {
        "orders": {key: [str(t.block.prefix) for t in members]
                   for key, members in p.networks.items()},
        "blocks": {str(t.block.prefix): (
            t.order, t.watched, list(t.responsive), dict(t.misses), t.belief_up,
            list(t.outcomes), t.rounds_since_discovery, t.dark_rounds, t.tried, t.cursor)
            for t in p.tracks},
        "ready": p.ready(),
    }


async def lived(world: World, blocks: list[Block]) -> Prober:
    """A prober after a few hours' worth of rounds: sets filled, a block cut and back, an
    address gone, a TCP-only block."""
    old = prober(world, blocks, seed=7)
    for _ in range(6):
        await old.round()
    first = watched(old, "big")[0]
    world.cut.add(first)
    await old.round()
    world.cut.clear()
    world.icmp.discard(next(t.address for t in old.tracks if t.block.prefix == first
                            for t in t.responsive))
    for _ in range(3):
        await old.round()
    return old


def network_world_with_tcp() -> tuple[World, list[Block]]:
    world, blocks = network_world({"big": 30, "small": 3}, empty_every=4)
    # The small network's first block answers TCP 443 only.
    tcp_block = "198.18.30.0/24"
    world.icmp.difference_update(hosts(tcp_block, range(1, 255)))
    for address in hosts(tcp_block, range(2, 255, 5)):
        world.tcp[address] = 443
    return world, blocks


async def test_a_prober_loaded_from_the_saved_state_probes_what_the_old_one_would() -> None:
    world, blocks = network_world_with_tcp()
    old = await lived(world, blocks)
    text = to_json(old)
    assert json.loads(text)["version"] == 1
    # A new process: another random draw, nothing known: no block watched, so its first
    # round's report (made before discovery) would be empty, and no network ready.
    fresh = prober(copy(world), blocks, seed=99)
    assert knowledge(fresh) != knowledge(old)
    assert not any(t.watched for t in fresh.tracks) and fresh.ready() == set()

    new_world = copy(world)
    new = prober(new_world, blocks, seed=99)
    restored = load_json(new, text)
    assert restored == sum(1 for t in old.tracks if t.rounds_since_discovery is not None)
    assert knowledge(new) == knowledge(old)
    assert new.ready() == {("KZ", "big"), ("KZ", "small"), ("KZ", "")}
    assert any(t.method.value == "tcp" for tr in new.tracks for t in tr.responsive)
    # The next round of each: the same probes, the same report (the watched blocks, up).
    mark = len(world.sent)
    ours, theirs = await new.round(), await old.round()
    assert sorted(t for _, t in new_world.sent) == sorted(t for _, t in world.sent[mark:])
    assert len(new_world.sent) > 0
    assert [(r.block, r.state, r.probes) for r in ours.results] == \
        [(r.block, r.state, r.probes) for r in theirs.results]
    assert {r.block.prefix for r in ours.results} == \
        {*watched(old, "big"), *watched(old, "small")}
    assert all(r.state is BlockState.UP for r in ours.results)
    assert to_json(new) == to_json(old)


async def test_blocks_no_longer_configured_or_opted_out_are_dropped_and_never_probed() -> None:
    world, blocks = network_world_with_tcp()
    old = await lived(world, blocks)
    saved = json.loads(to_json(old))
    big = watched(old, "big")
    removed, opted = big[0], big[1]
    # A saved target outside its block (into a neighbour nobody configured) and one asked on
    # a TCP port no longer configured: neither may be probed.
    kept = str(big[2])
    saved["blocks"][kept]["responsive"] += ["198.18.200.7", f"{big[2].network_address + 9}:22"]
    stray = "198.18.201.0/24"
    saved["blocks"][stray] = dict(saved["blocks"][kept], network="KZ|big",
                                  responsive=["198.18.201.1"])
    world.icmp.update(hosts("198.18.200.0/24", range(1, 255)))
    world.icmp.update(hosts(stray, range(1, 255)))
    world.tcp[big[2].network_address + 9] = 22

    # The next run's block file: one block gone, one in the opt-out list, one new.
    opt_out = parse_opt_out([f"{opted.network_address + 128}/32"])
    lines = [f"KZ {b.network} {b.prefix}" for b in blocks if b.prefix != removed]
    new_prefix = "198.18.99.0/24"
    world.icmp.update(hosts(new_prefix, range(1, 255, 3)))
    lines.append(f"KZ big {new_prefix}")
    configured = parse_blocks(lines, opt_out=opt_out)
    assert opted not in {b.prefix for b in configured}  # the /24 is dropped whole
    new_world = copy(world)
    new = prober(new_world, configured, seed=5, opt_out=tuple(opt_out))
    restored = load_json(new, json.dumps(saved))
    tried = {str(t.block.prefix) for t in old.tracks if t.rounds_since_discovery is not None}
    assert restored == len(tried - {str(removed), str(opted)})
    tracks = {str(t.block.prefix): t for t in new.tracks}
    assert str(removed) not in tracks and str(opted) not in tracks and stray not in tracks
    assert [str(t.address) for t in tracks[kept].responsive] == \
        [str(t.address) for t in next(o for o in old.tracks
                                      if str(o.block.prefix) == kept).responsive]
    assert all(t.address in big[2] and t.port in (None, 80, 443)
               for t in tracks[kept].responsive)
    assert tracks[new_prefix].rounds_since_discovery is None
    assert not tracks[new_prefix].watched and not tracks[new_prefix].responsive
    # Two blocks left the big network's set: rounds find others (the new block among the
    # candidates), and no packet ever leaves the configured blocks or enters the opt-out.
    for _ in range(6):
        await new.round()
    assert len(watched(new, "big")) == 6
    allowed = {b.prefix for b in configured}
    assert new_world.sent and all(block_of(t) in allowed for _, t in new_world.sent)
    assert not any(block_of(t) in (removed, opted, ipaddress.IPv4Network(stray),
                                   ipaddress.IPv4Network("198.18.200.0/24"))
                   for _, t in new_world.sent)
    assert Target(big[2].network_address + 9, Method.TCP, 22) not in \
        {t for _, t in new_world.sent}


async def test_a_lower_watch_per_network_sets_the_extra_blocks_aside() -> None:
    world, blocks = network_world_with_tcp()
    old = await lived(world, blocks)
    new = prober(copy(world), blocks, seed=3, settings=replace(SETTINGS, watch_per_network=4))
    load_json(new, to_json(old))
    assert watched(new, "big") == watched(old, "big")[:4]
    assert watched(new, "small") == watched(old, "small")


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "not JSON"),
    ('{"version": 2, "seed": 1, "blocks": {}}', "not a version 1 document"),
    ('["version", 1]', "not a version 1 document"),
    ('{"version": 1, "blocks": {}}', "needs a seed and blocks"),
    ('{"version": 1, "seed": 1, "blocks": {"198.18.0.0/23": {}}}', "not a /24 block"),
    ('{"version": 1, "seed": 1, "blocks": {"nonsense": {}}}', "'nonsense'"),
    ('{"version": 1, "seed": 1, "blocks": {"198.18.0.0/24": []}}', "not an object"),
])
async def test_a_damaged_document_is_refused_whole_and_the_prober_left_as_it_was(
        text: str, problem: str) -> None:
    world, blocks = network_world_with_tcp()
    p = prober(world, blocks, seed=1)
    await p.round()
    before = knowledge(p)
    with pytest.raises(ValueError, match=STATE_NAME) as caught:
        load_json(p, text)
    assert problem in str(caught.value)
    assert knowledge(p) == before


async def test_a_block_with_one_bad_field_refuses_the_whole_document() -> None:
    world, blocks = network_world_with_tcp()
    old = await lived(world, blocks)
    saved = json.loads(to_json(old))
    good = json.dumps(saved)
    last = sorted(saved["blocks"])[-1]
    for field, bad, problem in [("belief_up", 1.5, "belief_up"), ("outcomes", "01x", "outcomes"),
                                ("tried", -1, "tried"), ("responsive", ["1.2.3"], "address"),
                                ("watched", "yes", "watched")]:
        damaged = json.loads(good)
        damaged["blocks"][last][field] = bad
        fresh = prober(copy(world), blocks, seed=2)
        before = knowledge(fresh)
        with pytest.raises(ValueError, match=problem):
            load_json(fresh, json.dumps(damaged))
        assert knowledge(fresh) == before
    assert load_json(prober(copy(world), blocks, seed=2), None) == 0


class WorldTransport:
    """The emulated address space as the service's transport (no raw sockets needed)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def probe(self, target: Target, timeout: float) -> bool:
        return await self.world.probe(target, timeout)


def service_config(tmp_path: Path, blocks: list[Block]) -> OutsideConfig:
    (tmp_path / "blocks.txt").write_text(
        "".join(f"{b.country} {b.network} {b.prefix}\n" for b in blocks))
    base = OutsideConfig(enabled=True, block_files=("blocks.txt",), rate=4000, burst=50,
                         round=0.5, timeout=1.0, discovery_sample=32, watch_per_network=6)
    return resolve(base, tmp_path)


async def rounds(service: OutsideService, count: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        async with asyncio.timeout(60):
            while service.rounds < count:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_restarted_service_reports_the_saved_watch_sets_in_its_first_round(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world, blocks = network_world_with_tcp()
    cfg = service_config(tmp_path, blocks)
    saved: list[str] = []

    async def save(p: Prober) -> None:
        saved.append(to_json(p))

    first = OutsideService(cfg, make_transport=lambda: WorldTransport(world))
    first.save_prober = save
    await rounds(first, 4)
    assert len(saved) == first.rounds
    assert first.prober is not None and first.prober.ready()

    second = OutsideService(cfg, make_transport=lambda: WorldTransport(copy(world)))
    second.saved_prober = saved[-1]
    with caplog.at_level(logging.INFO, logger="collector.outside.service"):
        await rounds(second, 1)
    assert second.report is not None and second.prober is not None
    watched_then = {str(t.block.prefix) for t in first.prober.tracks if t.watched}
    assert {str(r.block.prefix) for r in second.report.results} == watched_then
    assert len(watched_then) == 6 + 2
    assert {("KZ", "big"), ("KZ", "small")} <= second.prober.ready()
    assert [r.getMessage() for r in caplog.records if "restored" in r.getMessage()] == [
        f"outside-in prober state of {len(json.loads(saved[-1])['blocks'])} blocks restored"]


async def test_a_service_given_a_damaged_document_says_so_once_and_starts_anew(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    world, blocks = network_world_with_tcp()
    service = OutsideService(service_config(tmp_path, blocks),
                             make_transport=lambda: WorldTransport(world))
    service.saved_prober = '{"version": 9}'
    with caplog.at_level(logging.WARNING):
        await rounds(service, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["starting the outside-in watch sets anew: outside.prober_state: "
                        "not a version 1 document"]
    assert service.prober is not None and any(t.watched for t in service.prober.tracks)
