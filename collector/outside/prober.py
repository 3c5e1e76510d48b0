"""Trinocular-style adaptive prober: per /24 block, find addresses that answer, then probe them
in rounds and keep the belief that the block is up.

The loop, per round (every ``round_seconds``, Trinocular's 11 minutes by default):

1. Discovery, for a block with fewer than ``max_responsive`` known addresses and not believed
   down: try ``discovery_sample`` addresses of the block not tried yet (a fixed random order
   over .1-.254, then again from the start), each by ICMP echo and, if silent, by a TCP SYN to
   each configured port. Addresses that answer join the block's ever-responsive set E(b).
   Trinocular takes E(b) from a prior census of the whole address space; we build it a sample
   at a time: a pass in the first round, then one every ``rediscover_every`` rounds until E(b)
   is full, so discovery costs nothing once it is. At most ``max_discovery_blocks`` blocks get
   a pass per round (blocks never tried first), so that with many blocks and a gentle rate
   the first rounds still end in time and report the blocks found so far.
2. The round (``collector.outside.belief.Round``): probes go to E(b) in turn; after each one
   the belief is updated by Bayes' rule, and the round stops as soon as the state is decisive
   and the last reply agrees (one probe for a block that answers as expected, up to 14 when in
   doubt).
3. An address that missed three probes in a row, each in a round that ended ``up``, leaves
   E(b) (the host went away; discovery finds another).
4. The availability A(E(b)) is the share of answered probes over the last
   ``availability_window`` probes of rounds that ended ``up`` (the block answered while it was
   up); discovery counts as one answered probe per address found. Blocks with A < 0.10 are not
   judged (``belief.probeable``).
5. Confirmation (``confirm``): when the caller says a network turned critical in a round, the
   prober does not wait a whole round for the second look. ``confirm_after`` seconds after the
   round it re-probes a random sample of at most ``confirm_sample`` of that network's judged
   blocks that ended the round not ``up``, each by a fresh adaptive round from its current
   belief (Trinocular's rule again: one probe for a block still silent, more while in doubt, at
   most the round budget). Each probe of a confirmation tries the address by every method at
   once (ICMP and each TCP port: one timeout), so a border that starts dropping ICMP echo is not
   read as a cut: an address that answers another way has that way kept in E(b), and then the
   block's other addresses are checked the same way. The share of the sample that came back up
   is applied to all the blocks that were not up (the estimate is exact when the sample is all
   of them). Trinocular itself keeps probing a block whose belief left ``up`` within the round
   (the extra probes of step 2) and again in the next rounds; the confirmation is that second
   look, for one network, within minutes instead of a round.

Every probe goes through ``collector.outside.sender.PacedSender``, which enforces the scope
and the packet rate; this module decides only what to probe. The blocks are probed
concurrently, each block's probes one after another (each depends on the belief so far).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

from collector.outside.belief import (
    INITIAL_BELIEF_UP,
    ROUND_BUDGET,
    BlockState,
    Round,
    estimate_availability,
    probeable,
)
from collector.outside.blocks import Block
from collector.outside.sender import Clock, PacedSender, Sleep
from collector.outside.wire import Method, Target

MISSES_TO_FORGET = 3
"""Misses in a row (in rounds the block ended up) after which an address leaves E(b)."""


@dataclass(frozen=True, slots=True)
class ProberSettings:
    """The schedule and the probing rules (the ``outside:`` config section fills it)."""

    round_seconds: float = 660.0
    timeout: float = 3.0
    methods: tuple[Method, ...] = (Method.ICMP, Method.TCP)
    tcp_ports: tuple[int, ...] = (80, 443)
    discovery_sample: int = 16
    max_responsive: int = 8
    rediscover_every: int = 6
    availability_window: int = 64
    round_budget: int = ROUND_BUDGET
    # Blocks given a discovery pass per round (None: every block that is due). Bounds the
    # first rounds, which would otherwise wait for every block's discovery before reporting.
    max_discovery_blocks: int | None = None
    # Confirmation of a network that turned critical (step 5): how long after the round, and
    # at most how many of its dark blocks are re-probed.
    confirm_after: float = 30.0
    confirm_sample: int = 32

    def __post_init__(self) -> None:
        if not self.round_seconds > 0 or not self.timeout > 0:
            raise ValueError("round_seconds and timeout must be > 0")
        if not self.methods:
            raise ValueError("at least one probe method is needed")
        if Method.TCP in self.methods and not self.tcp_ports:
            raise ValueError("TCP probing needs at least one port")
        for name in ("discovery_sample", "max_responsive", "rediscover_every",
                     "availability_window", "round_budget", "confirm_sample"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_discovery_blocks is not None and self.max_discovery_blocks < 1:
            raise ValueError("max_discovery_blocks must be >= 1 or None")
        if self.confirm_after < 0:
            raise ValueError("confirm_after must be >= 0")


@dataclass(slots=True)
class BlockTrack:
    """What the prober knows about one block; mutated only by the prober."""

    block: Block
    order: list[int]
    responsive: list[Target] = field(default_factory=list)
    tried: int = 0
    cursor: int = 0
    belief_up: float = INITIAL_BELIEF_UP
    outcomes: deque[bool] = field(default_factory=deque)
    rounds_since_discovery: int | None = None
    misses: dict[Target, int] = field(default_factory=dict)

    @property
    def availability(self) -> float | None:
        return estimate_availability(sum(self.outcomes), len(self.outcomes))

    @property
    def state(self) -> BlockState | None:
        """The belief's state, or None while the block cannot be judged (too few answers)."""
        if not self.responsive or not probeable(self.availability):
            return None
        return Round(self.belief_up, self.availability or 1.0).state

    def next_target(self) -> Target:
        target = self.responsive[self.cursor % len(self.responsive)]
        self.cursor += 1
        return target

    def next_hosts(self, count: int) -> list[ipaddress.IPv4Address]:
        """The next ``count`` addresses to try in discovery (the order wraps around)."""
        base = int(self.block.prefix.network_address)
        known = {int(t.address) for t in self.responsive}
        hosts: list[ipaddress.IPv4Address] = []
        for _ in range(len(self.order)):
            if len(hosts) == count:
                break
            host = base + self.order[self.tried % len(self.order)]
            self.tried += 1
            if host not in known:
                hosts.append(ipaddress.IPv4Address(host))
        return hosts


@dataclass(frozen=True, slots=True)
class BlockResult:
    block: Block
    state: BlockState | None
    belief_up: float
    availability: float | None
    responsive: int
    probes: int


@dataclass(frozen=True, slots=True)
class RoundReport:
    """One round over every block: when, how long, how many probes, each block's state."""

    started: float
    seconds: float
    sent: int
    answered: int
    results: tuple[BlockResult, ...]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The second look at one network after a round in which it turned critical.

    ``dark`` blocks were judged and not up at the end of that round; ``sampled`` of them were
    probed again and ``recovered`` of those are up now. ``blocks_up`` estimates the network's
    blocks up: those up before, plus the dark ones in the share that recovered.
    """

    country: str
    network: str
    started: float
    seconds: float
    sent: int
    blocks: int
    up_before: int
    dark: int
    sampled: int
    recovered: int

    @property
    def blocks_up(self) -> int:
        if self.sampled == 0:
            return self.up_before
        return self.up_before + round(self.dark * self.recovered / self.sampled)


ConfirmHook = Callable[[RoundReport], Collection[tuple[str, str]]]
"""After a round: the (country, network) pairs to confirm (those that turned critical)."""


class Prober:
    """Discovery and adaptive rounds over ``blocks``; sends only through ``sender``."""

    def __init__(self, blocks: Iterable[Block], sender: PacedSender,
                 settings: ProberSettings | None = None, rng: random.Random | None = None,
                 clock: Clock = time.monotonic, wall: Clock = time.time,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings or ProberSettings()
        self._sender = sender
        self._clock, self._wall, self._sleep = clock, wall, sleep
        rng = rng or random.Random()
        self._rng = rng
        self.tracks: list[BlockTrack] = []
        for block in sorted(blocks):
            if not sender.scope.allows(block.prefix.network_address + 1):
                raise ValueError(f"block {block.prefix} is outside the sender's scope")
            order = list(range(1, 255))
            rng.shuffle(order)
            self.tracks.append(BlockTrack(
                block=block, order=order,
                outcomes=deque(maxlen=self.settings.availability_window)))

    async def _answers(self, address: ipaddress.IPv4Address) -> Target | None:
        """The first way ``address`` answers (ICMP, then each TCP port), or None."""
        timeout = self.settings.timeout
        for method in self.settings.methods:
            if method is Method.ICMP:
                candidates = [Target(address, Method.ICMP)]
            else:
                candidates = [Target(address, Method.TCP, port) for port in self.settings.tcp_ports]
            for target in candidates:
                if await self._sender.probe(target, timeout):
                    return target
        return None

    def _discovery_due(self, track: BlockTrack) -> bool:
        if len(track.responsive) >= self.settings.max_responsive:
            return False
        if track.state is BlockState.DOWN:
            return False
        since = track.rounds_since_discovery
        return since is None or since >= self.settings.rediscover_every

    async def _discover(self, track: BlockTrack) -> None:
        hosts = track.next_hosts(self.settings.discovery_sample)
        found = await asyncio.gather(*(self._answers(host) for host in hosts))
        room = self.settings.max_responsive - len(track.responsive)
        for target in [t for t in found if t is not None][:room]:
            track.responsive.append(target)
            track.outcomes.append(True)
        track.rounds_since_discovery = 0

    async def _any_way(self, track: BlockTrack, target: Target) -> bool:
        """Probe ``target``'s address by every method at once (one timeout, not one per
        method). An address that no longer answers ``target``'s way but answers another keeps
        that way in E(b) (ICMP newly filtered, TCP still open)."""
        others = [Target(target.address, method, port)
                  for method in self.settings.methods
                  for port in ((None,) if method is Method.ICMP else self.settings.tcp_ports)]
        ways = [target, *(t for t in others if t != target)]
        timeout = self.settings.timeout
        answers = await asyncio.gather(*(self._sender.probe(t, timeout) for t in ways))
        if answers[0]:
            return True
        for way, answered in zip(ways[1:], answers[1:], strict=True):
            if answered:
                if target in track.responsive and way not in track.responsive:
                    track.responsive[track.responsive.index(target)] = way
                    track.misses.pop(target, None)
                return True
        return False

    async def _probe_block(self, track: BlockTrack, every_method: bool = False) -> int:
        """One adaptive round of one block; returns the probes it took."""
        availability = track.availability
        if not track.responsive or availability is None or not probeable(availability):
            return 0
        current = Round(track.belief_up, availability, budget=self.settings.round_budget)
        probes: list[tuple[Target, bool]] = []
        while current.wants_probe:
            target = track.next_target()
            if every_method:
                replied = await self._any_way(track, target)
            else:
                replied = await self._sender.probe(target, self.settings.timeout)
            probes.append((target, replied))
            current = current.observe(replied)
        track.belief_up = current.belief_up
        if current.state is BlockState.UP:
            track.outcomes.extend(replied for _, replied in probes)
            self._forget_dead(track, probes)
        return len(probes)

    def _forget_dead(self, track: BlockTrack, probes: list[tuple[Target, bool]]) -> None:
        """An address that missed ``MISSES_TO_FORGET`` probes in a row, each in a round
        that ended up (the block answered, the address did not), has gone: it leaves E(b),
        and discovery finds another. Without this, a renumbered host would cost every
        round that reaches it a lost probe and a second one."""
        for target, replied in probes:
            if replied:
                track.misses.pop(target, None)
                continue
            track.misses[target] = track.misses.get(target, 0) + 1
            if track.misses[target] >= MISSES_TO_FORGET and len(track.responsive) > 1 \
                    and target in track.responsive:
                track.responsive.remove(target)
                del track.misses[target]

    def _discoveries(self) -> set[int]:
        """Indexes of the tracks that get a discovery pass this round: those due, blocks
        never tried first, at most ``max_discovery_blocks``."""
        for track in self.tracks:
            if track.rounds_since_discovery is not None:
                track.rounds_since_discovery += 1
        due = [i for i, t in enumerate(self.tracks) if self._discovery_due(t)]
        due.sort(key=lambda i: self.tracks[i].rounds_since_discovery is not None)
        limit = self.settings.max_discovery_blocks
        return set(due if limit is None else due[:limit])

    async def _visit(self, track: BlockTrack, discover: bool) -> BlockResult:
        if discover:
            await self._discover(track)
        probes = await self._probe_block(track)
        return BlockResult(block=track.block, state=track.state, belief_up=track.belief_up,
                           availability=track.availability, responsive=len(track.responsive),
                           probes=probes)

    async def round(self) -> RoundReport:
        """Visit every block once (discovery if due, then its adaptive round)."""
        counters = self._sender.counters
        sent, answered = counters.sent, counters.answered
        started, begin = self._wall(), self._clock()
        chosen = self._discoveries()
        results = await asyncio.gather(*(self._visit(track, i in chosen)
                                         for i, track in enumerate(self.tracks)))
        return RoundReport(started=started, seconds=self._clock() - begin,
                           sent=counters.sent - sent, answered=counters.answered - answered,
                           results=tuple(results))

    async def _confirm_block(self, track: BlockTrack) -> None:
        """A fresh adaptive round by every method; if an address of E(b) was found to answer
        only another way, the rest of E(b) is checked the same way at once (at most
        ``max_responsive`` addresses), so the next round probes the ways that work."""
        before = list(track.responsive)
        await self._probe_block(track, every_method=True)
        if track.responsive != before:
            await asyncio.gather(*(self._any_way(track, t) for t in list(track.responsive)
                                   if t in before))

    async def confirm(self, country: str, network: str) -> Confirmation:
        """Re-probe a sample of the network's dark blocks now (step 5 of the module doc)."""
        counters = self._sender.counters
        sent = counters.sent
        started, begin = self._wall(), self._clock()
        mine = [t for t in self.tracks
                if (t.block.country, t.block.network) == (country, network)]
        up = [t for t in mine if t.state is BlockState.UP]
        dark = [t for t in mine if t.state in (BlockState.DOWN, BlockState.UNCERTAIN)]
        sample = (dark if len(dark) <= self.settings.confirm_sample
                  else self._rng.sample(dark, self.settings.confirm_sample))
        await asyncio.gather(*(self._confirm_block(t) for t in sample))
        recovered = sum(1 for t in sample if t.state is BlockState.UP)
        return Confirmation(country=country, network=network, started=started,
                            seconds=self._clock() - begin, sent=counters.sent - sent,
                            blocks=len(mine), up_before=len(up), dark=len(dark),
                            sampled=len(sample), recovered=recovered)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        if seconds > 0:
            try:
                await asyncio.wait_for(stop.wait(), seconds)
            except TimeoutError:
                pass

    async def run(self, on_round: Callable[[RoundReport], Awaitable[None]],
                  stop: asyncio.Event, confirm: ConfirmHook | None = None,
                  on_confirm: Callable[[Confirmation], Awaitable[None]] | None = None) -> None:
        """Rounds every ``round_seconds`` until ``stop`` is set; a round that overruns its
        slot is followed at once by the next (never two at a time). After a round, the
        networks ``confirm`` names are confirmed ``confirm_after`` seconds later (inside the
        slot, through the same sender), each result handed to ``on_confirm``."""
        while not stop.is_set():
            begin = self._clock()
            report = await self.round()
            await on_round(report)
            suspects = sorted(confirm(report)) if confirm is not None else []
            if suspects:
                await self._pause(stop, self.settings.confirm_after)
                if stop.is_set():
                    break
                results = await asyncio.gather(*(self.confirm(cc, net) for cc, net in suspects))
                if on_confirm is not None:
                    for result in results:
                        await on_confirm(result)
            rest = self.settings.round_seconds - (self._clock() - begin)
            if rest > 0:
                try:
                    await asyncio.wait_for(stop.wait(), rest)
                except TimeoutError:
                    pass
