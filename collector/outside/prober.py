"""Trinocular-style adaptive prober: per /24 block, find addresses that answer, then probe them
in rounds and keep the belief that the block is up.

The loop, per round (every ``round_seconds``; Trinocular's 11 minutes in ``ProberSettings``,
5 minutes in the collector's config). A round sends in two parts: first the adaptive rounds
of the watched blocks (step 2), after which ``run`` hands over the round's report (and
confirms, step 5); then discovery (step 1), each block it finds getting its first adaptive
round, so the report never waits for discovery's packets (a round at the default rate spends
more of them on discovery than on the watched blocks):

1. Discovery, for a block with fewer than ``max_responsive`` known addresses and not believed
   down: try ``discovery_sample`` addresses of the block not tried yet (a fixed random order
   over .1-.254, then again from the start), each by ICMP echo and, if silent, by a TCP SYN to
   each configured port. Addresses that answer join the block's ever-responsive set E(b).
   Trinocular takes E(b) from a prior census of the whole address space; we build it a sample
   at a time: a pass in the first round, then one every ``rediscover_every`` rounds until E(b)
   is full, so discovery costs nothing once it is. At most ``max_discovery_blocks`` blocks get
   a pass per round (blocks never tried first), so that with many blocks and a gentle rate
   the first rounds still end in time and report the blocks found so far. With
   ``round_packets`` (the rate times the round) the bound follows each round from the budget:
   ``discovery_share`` of the round's packets, plus what the watched blocks' rounds leave of
   the rest (``WATCHED_COST`` packets each), so discovery runs fastest while the watch sets
   are still empty.
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
   of them). When an address of the sample was found answering another way (the border
   changed, not the hosts), every other dark block of the network is checked the same way at
   once and the estimate is over all of them: otherwise the blocks outside the sample would go
   on being probed the way that no longer works and the network would stay below its baseline
   for good. A real cut changes no way and costs no more than the sample. Trinocular itself
   keeps probing a block whose belief left ``up`` within the round (the extra probes of step
   2) and again in the next rounds; the confirmation is that second look, for one network,
   within minutes instead of a round.

6. The watch set (``watch_per_network``; 0 turns it off and every block is watched). A network
   of thousands of /24 blocks does not need all of them probed to be seen going dark: IODA's
   signal is the number of blocks up against its own recent median, and the count of a fixed
   random sample of a few dozen blocks falls in the same proportion when the network goes
   dark. Each network's blocks get a fixed random order (drawn once
   from the prober's rng). Discovery walks that order, blocks never tried first, one block per
   network in turn (so every network's set fills alike), each network taking at most the room
   left in its set; a block discovery finds answering (it can be judged: ``state`` is not
   None) joins the set, and a block where it finds nothing is set aside. The set is full at
   ``watch_per_network`` blocks; from then on the network's other blocks get no packet (no
   discovery, no rounds), and only the watched ones are probed, reported in the round and
   counted in the signal (blocks up of the watched blocks). A network whose every block has
   been tried and whose set is not full tries the blocks set aside again every
   ``rediscover_every`` rounds, until every address of such a block has been tried once
   without an answer; then only every ``SWEPT_PAUSE`` (24) times as many rounds. Watched
   blocks get their rediscovery (E(b) not full) as before.
   A watched block leaves the set, and the next block of the order takes its place (with its
   discovery, in the next round), only on evidence about the block itself, never because its
   network went dark, since replacing the blocks of a cut network by others would hide the
   cut (and the others would be dark too):
   (a) its availability fell below 0.10 (it cannot be judged any more). A(E(b)) is measured
       only in rounds that ended ``up``, so a cut (rounds ending ``down``) never lowers it;
   (b) it was not ``up`` for ``DARK_ROUNDS_TO_REPLACE`` (12) rounds, each counted only when at
       least ``OTHERS_UP`` (0.8, IODA's warning level) of the network's other judged watched
       blocks were up in that round: its hosts went away while the network answers. A
       network-wide cut, or a partial one of more than a fifth of the watched blocks, counts no
       such round, so its blocks stay watched and its share up falls. A block cut alone (or
       with fewer than a fifth of the set) is replaced after 12 rounds: such a cut is below
       IODA's warning level and would never be a network's event; the cost is that it no
       longer counts down after that hour.
   A block that left the set starts anew (E(b), belief and availability forgotten) if discovery
   comes back to it. While a set fills, its count of blocks up grows with discovery, not with
   the network: ``ready`` names the networks whose set is settled, the only ones whose counts
   may train a baseline.

Every probe goes through ``collector.outside.sender.PacedSender``, which enforces the scope
and the packet rate; this module decides only what to probe. The blocks are probed
concurrently, each block's probes one after another (each depends on the belief so far).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
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
from collector.outside.sender import Clock, PacedSender, Scope, Sleep
from collector.outside.wire import Method, Target

log = logging.getLogger(__name__)

MISSES_TO_FORGET = 3
"""Misses in a row (in rounds the block ended up) after which an address leaves E(b)."""

DARK_ROUNDS_TO_REPLACE = 12
"""Rounds a watched block may be not up, on its own, before another block takes its place."""

OTHERS_UP = 0.8
"""Share of a network's other watched blocks that must be up for a dark block to count as dark
on its own (IODA's warning level: above it the network is as usual)."""

SWEPT_PAUSE = 24
"""A block set aside whose every address was tried without an answer is tried again this many
times less often (once a day at the defaults instead of once an hour)."""

WATCHED_COST = 1.5
"""Packets a watched block's round is assumed to take, for the discovery budget (one while it
answers as expected; the margin covers the blocks in doubt)."""


def _in_turn(lists: list[list[BlockTrack]]) -> list[BlockTrack]:
    """The first of each list, then the second of each, and so on."""
    out: list[BlockTrack] = []
    for depth in range(max((len(x) for x in lists), default=0)):
        out += [x[depth] for x in lists if depth < len(x)]
    return out


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
    # Blocks watched per (country, network) (the watch set, below); 0: every block, each
    # probed every round. The config's default is 64.
    watch_per_network: int = 0
    # Packets the rate allows in one round (rate x round_seconds). When set, the blocks given
    # a discovery pass per round follow from it each round (``discovery_share`` of it, plus
    # what the watched blocks' rounds leave of the rest) and ``max_discovery_blocks`` is not
    # used; None: ``max_discovery_blocks`` alone bounds discovery.
    round_packets: int | None = None
    discovery_share: float = 0.5

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
        if self.watch_per_network < 0:
            raise ValueError("watch_per_network must be >= 0 (0: every block)")
        if self.round_packets is not None and self.round_packets < 1:
            raise ValueError("round_packets must be >= 1 or None")
        if not 0 < self.discovery_share <= 1:
            raise ValueError("discovery_share must be in (0, 1]")


@dataclass(slots=True)
class BlockTrack:
    """What the prober knows about one block; mutated only by the prober."""

    block: Block
    # What the block's order of addresses is drawn from (``order``).
    order_seed: str = ""
    responsive: list[Target] = field(default_factory=list)
    tried: int = 0
    cursor: int = 0
    belief_up: float = INITIAL_BELIEF_UP
    outcomes: deque[bool] = field(default_factory=deque)
    rounds_since_discovery: int | None = None
    misses: dict[Target, int] = field(default_factory=dict)
    # In its network's watch set (probed every round, reported); always with no cap.
    watched: bool = True
    # Rounds in a row (counted only while the network's other watched blocks are up) that
    # this watched block was not up: the "dark on its own" rule of the watch set.
    dark_rounds: int = 0
    _order: list[int] | None = field(default=None, init=False, repr=False)

    @property
    def order(self) -> list[int]:
        """The block's addresses (.1-.254 as numbers) in the fixed random order discovery
        tries them, drawn from ``order_seed`` when first asked for (a large block file's
        blocks beyond the watch sets never are, and shuffling them all would take seconds)."""
        if self._order is None:
            order = list(range(1, 255))
            random.Random(self.order_seed).shuffle(order)
            self._order = order
        return self._order

    def reorder(self, order_seed: str) -> None:
        self.order_seed, self._order = order_seed, None

    def forget(self) -> None:
        """Back to a block with nothing known (left the watch set): its responsive set, belief
        and availability start anew if discovery comes back to it."""
        self.watched = False
        self.responsive.clear()
        self.outcomes.clear()
        self.misses.clear()
        self.belief_up = INITIAL_BELIEF_UP
        self.dark_rounds = 0

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
    """One round over the watched blocks (every block without a cap): when, how long, how many
    probes, each block's state."""

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
            self.tracks.append(BlockTrack(
                block=block,
                outcomes=deque(maxlen=self.settings.availability_window),
                watched=self.settings.watch_per_network == 0))
        self.networks: dict[tuple[str, str], list[BlockTrack]] = {}
        for track in self.tracks:
            self.networks.setdefault((track.block.country, track.block.network), []).append(track)
        self.seed = 0
        self.reseed(rng.getrandbits(64))

    def reseed(self, seed: int) -> None:
        """Draw every random order from ``seed``: each block's order of addresses for
        discovery, and each network's order of blocks (discovery walks it, and the watch set
        is its first blocks that can be judged). Each is drawn from the seed and the block's
        prefix alone, so a saved state (``collector.outside.prober_state``) with its seed gets
        the same orders back, and a block file with blocks added or removed keeps the others'
        orders."""
        self.seed = seed
        for track in self.tracks:
            track.reorder(f"{seed}:{track.block.prefix}")
        for members in self.networks.values():
            members.sort(key=lambda t: random.Random(f"{seed}|{t.block.prefix}").random())

    @property
    def scope(self) -> Scope:
        """The addresses the sender lets through (the configured blocks minus the opt-outs)."""
        return self._sender.scope

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

    def _set_aside_due(self, track: BlockTrack) -> bool:
        """A block set aside is tried again every ``rediscover_every`` rounds until every one
        of its addresses has been tried once; a block swept whole without an answer then
        waits ``SWEPT_PAUSE`` times longer between passes."""
        if not self._discovery_due(track):
            return False
        if track.tried < len(track.order) or track.responsive:
            return True
        since = track.rounds_since_discovery
        return since is not None and since >= self.settings.rediscover_every * SWEPT_PAUSE

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

    def _discovery_limit(self) -> int | None:
        """Blocks that may get a discovery pass this round (None: no bound). With
        ``round_packets``: its ``discovery_share``, plus what the watched blocks' rounds leave
        of the rest (``WATCHED_COST`` packets each), at the worst case of a pass (every sampled
        address asked by ICMP and then each TCP port)."""
        s = self.settings
        if s.round_packets is None:
            return s.max_discovery_blocks
        per_address = (1 if Method.ICMP in s.methods else 0) + \
            (len(s.tcp_ports) if Method.TCP in s.methods else 0)
        per_block = s.discovery_sample * max(1, per_address)
        judged = sum(1 for t in self.tracks if t.watched and t.state is not None)
        left = max(0.0, s.round_packets * (1 - s.discovery_share) - WATCHED_COST * judged)
        return max(1, int((s.round_packets * s.discovery_share + left) / per_block))

    def _discoveries(self) -> set[ipaddress.IPv4Network]:
        """The blocks that get a discovery pass this round, at most ``_discovery_limit``.

        Without a cap: those due, blocks never tried first. With one: first the blocks that
        fill the watch sets (blocks never tried, then blocks set aside that are due again, at
        most the room left in each network), taken one per network in turn so that every
        network's set fills alike; then the watched blocks whose E(b) is not full."""
        for track in self.tracks:
            if track.rounds_since_discovery is not None:
                track.rounds_since_discovery += 1
        cap = self.settings.watch_per_network
        if cap == 0:
            due = [t for t in self.tracks if self._discovery_due(t)]
            due.sort(key=lambda t: t.rounds_since_discovery is not None)
        else:
            untried: list[list[BlockTrack]] = []
            again: list[list[BlockTrack]] = []
            refresh: list[BlockTrack] = []
            for members in self.networks.values():
                watched = [t for t in members if t.watched]
                refresh += [t for t in watched if self._discovery_due(t)]
                room = cap - len(watched)
                if room <= 0:
                    continue
                new = [t for t in members if t.rounds_since_discovery is None][:room]
                old = [t for t in members if not t.watched and t.rounds_since_discovery
                       is not None and self._set_aside_due(t)][:room - len(new)]
                untried.append(new)
                again.append(old)
            due = [*_in_turn(untried), *_in_turn(again), *refresh]
        limit = self._discovery_limit()
        return {t.block.prefix for t in (due if limit is None else due[:limit])}

    async def _visit(self, track: BlockTrack, discover: bool, probe: bool = True) -> BlockResult:
        if discover:
            await self._discover(track)
        probes = await self._probe_block(track) if probe else 0
        return BlockResult(block=track.block, state=track.state, belief_up=track.belief_up,
                           availability=track.availability, responsive=len(track.responsive),
                           probes=probes)

    async def _watched_round(self) -> tuple[RoundReport, set[ipaddress.IPv4Network],
                                            set[ipaddress.IPv4Network]]:
        """The first part of a round: the adaptive round of every watched block, then the
        set-aside rules. Returns the report of the blocks still watched, the blocks probed and
        the blocks set aside (they get no discovery in this round)."""
        counters = self._sender.counters
        sent, answered = counters.sent, counters.answered
        started, begin = self._wall(), self._clock()
        visits = [t for t in self.tracks if t.watched]
        results = await asyncio.gather(*(self._visit(track, False) for track in visits))
        dropped = self._set_aside() if self.settings.watch_per_network else set()
        probed = {t.block.prefix for t, r in zip(visits, results, strict=True) if r.probes}
        report = RoundReport(started=started, seconds=self._clock() - begin,
                             sent=counters.sent - sent, answered=counters.answered - answered,
                             results=tuple(r for t, r in zip(visits, results, strict=True)
                                           if t.watched))
        return report, probed, dropped

    async def _discovery_round(self, chosen: set[ipaddress.IPv4Network],
                               probed: set[ipaddress.IPv4Network]
                               ) -> list[tuple[BlockTrack, BlockResult]]:
        """The second part: discovery passes of ``chosen``, and the first adaptive round of
        each block not ``probed`` in the first part; then blocks that can be judged join their
        watch set. Returns the results of the watched blocks it probed."""
        tracks = [t for t in self.tracks if t.block.prefix in chosen]
        results = await asyncio.gather(*(self._visit(t, True, t.block.prefix not in probed)
                                         for t in tracks))
        if self.settings.watch_per_network:
            self._join(chosen)
        return [(t, r) for t, r in zip(tracks, results, strict=True)
                if t.watched and t.block.prefix not in probed]

    async def round(self) -> RoundReport:
        """One whole round: the watched blocks' adaptive rounds, then discovery (blocks due,
        and blocks chosen to fill the watch sets, each with its first round), reported
        together: the blocks watched after the round. ``run`` reports after the first part."""
        counters = self._sender.counters
        sent, answered = counters.sent, counters.answered
        begin = self._clock()
        chosen = self._discoveries()
        first, probed, dropped = await self._watched_round()
        extra = await self._discovery_round(chosen - dropped, probed)
        results = {r.block.prefix: r for r in first.results}
        results.update((t.block.prefix, r) for t, r in extra)
        return RoundReport(started=first.started, seconds=self._clock() - begin,
                           sent=counters.sent - sent, answered=counters.answered - answered,
                           results=tuple(results[t.block.prefix] for t in self.tracks
                                         if t.block.prefix in results))

    def _set_aside(self) -> set[ipaddress.IPv4Network]:
        """After the watched blocks' rounds: those that leave their set by the rules of the
        module docstring (6a, 6b) are set aside; returns them."""
        dropped: set[ipaddress.IPv4Network] = set()
        for members in self.networks.values():
            watched = [t for t in members if t.watched]
            states = {t.block.prefix: t.state for t in watched}
            judged = [p for p, state in states.items() if state is not None]
            up = sum(1 for p in judged if states[p] is BlockState.UP)
            for track in watched:
                state = states[track.block.prefix]
                if state is BlockState.UP:
                    track.dark_rounds = 0
                    continue
                if state is not None:
                    others = len(judged) - 1
                    if others > 0 and up >= OTHERS_UP * others:
                        track.dark_rounds += 1
                    if track.dark_rounds < DARK_ROUNDS_TO_REPLACE:
                        continue
                track.forget()
                dropped.add(track.block.prefix)
        return dropped

    def _join(self, chosen: set[ipaddress.IPv4Network]) -> None:
        """After discovery: blocks of ``chosen`` that can be judged join their network's
        watch set, in the network's order, while it has room."""
        cap = self.settings.watch_per_network
        for members in self.networks.values():
            room = cap - sum(1 for t in members if t.watched)
            for track in members:
                if room <= 0:
                    break
                if not track.watched and track.block.prefix in chosen and \
                        track.state is not None:
                    track.watched = True
                    track.dark_rounds = 0
                    room -= 1

    def ready(self) -> set[tuple[str, str]]:
        """Networks whose watched blocks are settled (the set is full, or every block has had
        its discovery), and countries whose every network is: only their counts of blocks up
        may train a baseline. While a set fills, its count grows with discovery, not with the
        network; a baseline learned then would be too low (and growth beyond twice the median
        is inpainted, so it would stay too low)."""
        cap = self.settings.watch_per_network
        out: set[tuple[str, str]] = set()
        countries: dict[str, bool] = {}
        for (cc, network), members in self.networks.items():
            settled = all(t.rounds_since_discovery is not None for t in members) or \
                (cap > 0 and sum(1 for t in members if t.watched) >= cap)
            if settled:
                out.add((cc, network))
            countries[cc] = countries.get(cc, True) and settled
        out.update((cc, "") for cc, settled in countries.items() if settled)
        return out

    def watch_counts(self) -> list[tuple[str, str, int, int]]:
        """Per (country, network), sorted: blocks configured and blocks watched now."""
        return [(cc, network, len(members), sum(1 for t in members if t.watched))
                for (cc, network), members in sorted(self.networks.items())]

    async def _confirm_block(self, track: BlockTrack) -> bool:
        """A fresh adaptive round by every method; if an address of E(b) was found to answer
        only another way, the rest of E(b) is checked the same way at once (at most
        ``max_responsive`` addresses), so the next round probes the ways that work. True when
        a way changed."""
        before = list(track.responsive)
        await self._probe_block(track, every_method=True)
        if track.responsive == before:
            return False
        await asyncio.gather(*(self._any_way(track, t) for t in list(track.responsive)
                               if t in before))
        return True

    async def confirm(self, country: str, network: str) -> Confirmation:
        """Re-probe a sample of the network's dark blocks now (step 5 of the module doc)."""
        counters = self._sender.counters
        sent = counters.sent
        started, begin = self._wall(), self._clock()
        mine = [t for t in self.networks.get((country, network), []) if t.watched]
        up = [t for t in mine if t.state is BlockState.UP]
        dark = [t for t in mine if t.state in (BlockState.DOWN, BlockState.UNCERTAIN)]
        sample = (dark if len(dark) <= self.settings.confirm_sample
                  else self._rng.sample(dark, self.settings.confirm_sample))
        shifted = await asyncio.gather(*(self._confirm_block(t) for t in sample))
        if any(shifted) and len(sample) < len(dark):
            # A way stopped answering on the path, not the hosts (a border that started
            # dropping ICMP echo while TCP answers): the dark blocks outside the sample would
            # stay dark in every later round, the network stuck below its baseline. They are
            # checked the same way now; a real cut shifts nothing and costs nothing more.
            rest = [t for t in dark if all(t is not s for s in sample)]
            await asyncio.gather(*(self._confirm_block(t) for t in rest))
            sample = dark
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
        slot is followed at once by the next (never two at a time). Each round's report goes
        to ``on_round`` as soon as the watched blocks are probed: discovery comes after it
        (blocks it adds are reported from the next round on), so the report does not wait for
        discovery's packets. After the report, the networks ``confirm`` names are confirmed
        ``confirm_after`` seconds later (inside the slot, through the same sender, before
        discovery), each result handed to ``on_confirm``."""
        while not stop.is_set():
            begin = self._clock()
            chosen = self._discoveries()
            report, probed, dropped = await self._watched_round()
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
            await self._discovery_round(chosen - dropped, probed)
            rest = self.settings.round_seconds - (self._clock() - begin)
            if rest < 0:
                log.warning("outside-in round took %.0f s, longer than its %.0f s slot: raise "
                            "outside.rate, lower outside.watch_per_network or list fewer "
                            "blocks", self._clock() - begin, self.settings.round_seconds)
            if rest > 0:
                try:
                    await asyncio.wait_for(stop.wait(), rest)
                except TimeoutError:
                    pass
