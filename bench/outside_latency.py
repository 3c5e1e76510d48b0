"""How long a cut network takes to become an outside-in shutdown event, in real minutes.

Run: ``python bench/outside_latency.py [--round 10m] [--rate 5] [--watch N] [--cuts 10]
[--days 1] [--seed 1] [--quick]``

The namespace lab (``tests/collector/outside/test_outside_events_lab.py``) proves the chain
with rounds scaled down 120 times and timeouts not scaled, so it cannot say how many minutes a
cut takes at the defaults over the shipped block files. This bench runs the collector's own
code over those files (``configs/outside/kg-blocks.txt`` and ``kz-blocks.txt``, 10,347 /24
blocks) in virtual time, against a simulated Internet, and measures it:

- ``OutsideService`` unchanged, as the collector builds it from an ``outside:`` config: its
  ``Prober`` (discovery, adaptive rounds, confirmations), ``PacedSender`` with its
  ``TokenBucket`` at ``outside.rate``, the ``OutsideMonitor`` verdicts and the decision to
  confirm a network that turned critical. Only its transport is the simulated one
  (``OutsideService(make_transport=...)``), and its readings carry virtual wall time.
- The detection ``Engine`` with its default ``detection`` config (the ``outside`` detector,
  ``min_rounds`` 2, IODA's thresholds), fed every reading as the collector's ``to_engine``
  does, and evaluated every ``detection.interval`` (30 s, ``collector.detect.params``) at a
  random phase, as ``collector.pipeline`` runs it. An event's latency is from the cut to the
  first evaluation that returns it.

**Virtual time.** The whole simulation runs on ``VirtualLoop``, an asyncio event loop whose
``time()`` is a number kept by its selector, ``VirtualSelector``: when the loop has nothing
ready and would block in ``select(timeout)`` until its next timer, the selector adds
``timeout`` to the clock and returns no I/O (none exists: no socket is read or written), so
the loop runs the next timer at once. Every wait in the code under test is a timer of that
loop: ``asyncio.sleep`` in the bucket's waits and in the simulated transport (a reply after
its round-trip time, silence after the probe's full timeout), ``asyncio.wait_for`` in the
prober's pauses between rounds. The service reads the running loop's clock for the bucket and
the round timing (in the collector that clock is ``time.monotonic``) and ``wall`` for the
readings, here ``EPOCH + loop.time()``. A loop that had nothing scheduled would wait forever;
the selector raises instead. So virtual time moves only as the code under test waits, and a
round of N probes at rate r takes at least (N - burst) / r virtual seconds
(``tests/bench/test_outside_latency.py`` checks both).

**The simulated Internet** (seeded, ``--seed``). Per block: dark (no address answers) with
probability 0.35; otherwise a share of its 254 addresses that answer (log-uniform, 1 % to
90 %), a way they answer (both ICMP echo and TCP 80/443: 0.65 of the live blocks; ICMP only:
0.15; TCP only: 0.20), a per-probe loss rate (uniform 1 % to 3 %) and a host availability
(uniform 0.90 to 1.0: a live host misses some probes of its own). A reply comes after 0.05 to
0.4 s; a probe that gets none costs its full ``outside.timeout``. A cut block answers nothing;
an ICMP-filtered block answers only TCP.

**Runs**, after a warm-up (below):

- ``cut``: one network at a time, all its blocks silent from a time drawn uniformly within a
  round (after the previous case has ended), held until its event opens (or 6 rounds: a miss),
  then restored until the event has closed and the network is judged normal again; ``--cuts``
  times per network, for KZ AS9198, KZ AS21299, KG AS41750, KG AS12764 (``--networks``).
- ``half``: half the network's listed blocks (at random: about half its watched blocks; the
  table says the share of its judged ones) silent for 4 rounds and the confirmation of the
  last: what the verdicts and the engine say.
- ``icmp``: ICMP echo filtered for the whole network (TCP still answers), held as long.
- ``quiet``: ``--days`` simulated days with nothing but the random losses: events per day.

An event of a network that is not the one changed (or any event in a quiet day) is false.

**Warm-up.** A running collector has found its blocks' responsive addresses and has a week of
history. The simulation runs the service from its first round, so discovery is the real one:
until every network's watch set is full (``outside.watch_per_network``; with 0, until every
block has had its first discovery pass), and ``rediscover_every`` more rounds. The history
learned meanwhile counts blocks still being found (and an inpainted baseline that grows
slowly), which is not a running collector's; so the verdicts' history and the engine are then
started anew (``OutsideMonitor.load_json`` of an empty document, a fresh ``Engine``) and the
service runs ``min_history`` + 2 more rounds on the discovered state before the first case.

``--quick`` is a smoke run: 3 cuts and 1 half cut per network, a quarter of a day quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import selectors
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.detect.engine import Engine  # noqa: E402
from collector.detect.model import Event  # noqa: E402
from collector.detect.outside_in import OutsideReading  # noqa: E402
from collector.detect.params import DetectionConfig  # noqa: E402
from collector.outside.blocks import Block  # noqa: E402
from collector.outside.config import OutsideConfig, resolve  # noqa: E402
from collector.outside.prober import Prober  # noqa: E402
from collector.outside.service import OutsideService  # noqa: E402
from collector.outside.signal import STATE_VERSION  # noqa: E402
from collector.outside.wire import Method, Target  # noqa: E402
from probe.core.typed_config import parse_duration  # noqa: E402

EPOCH = 1_780_000_000.0  # virtual wall time at loop time 0 (a day in 2026)
BLOCK_FILES = ("kg-blocks.txt", "kz-blocks.txt")
NETWORKS = ("KZ|AS9198", "KZ|AS21299", "KG|AS41750", "KG|AS12764")
DAY = 86400.0
T = TypeVar("T")


# -- virtual time ------------------------------------------------------------------------------


class VirtualSelector(selectors.SelectSelector):
    """A selector that never waits: ``select(timeout)`` moves the virtual clock by ``timeout``
    and reports no I/O. Registration is the real bookkeeping (the loop registers its
    self-pipe), but no descriptor is ever polled."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self.now = start
        self.selects = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("virtual loop: nothing is scheduled, so it would wait forever")
        self.selects += 1
        if timeout > 0:
            self.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on ``VirtualSelector``'s clock: its timers fire in order at once."""

    def __init__(self) -> None:
        self.selector = VirtualSelector()
        super().__init__(self.selector)

    def time(self) -> float:
        return self.selector.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh ``VirtualLoop``."""
    with asyncio.Runner(loop_factory=VirtualLoop) as runner:
        return runner.run(main)


# -- the simulated Internet --------------------------------------------------------------------


def _mix(value: int) -> float:
    """A fixed pseudo-random number in [0, 1) per integer (an avalanche hash): whether a given
    address is a live host, stable across runs and probes."""
    value &= 0xFFFFFFFF
    value = ((value ^ (value >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    value = ((value ^ (value >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    return (value ^ (value >> 16)) / 2**32


@dataclass(frozen=True, slots=True)
class Life:
    """How one /24 block answers: the share of its addresses that are live hosts (0: dark),
    which ways they answer, the path's loss and a host's own availability per probe."""

    density: float
    icmp: bool
    tcp: bool
    loss: float
    availability: float


class World:
    """Every listed block's ``Life``, drawn from ``seed``, and what is done to them now: blocks
    cut (nothing answers) and blocks with ICMP echo filtered (only TCP answers)."""

    DARK = 0.35
    WAYS = ((0.65, True, True), (0.15, True, False), (0.20, False, True))

    def __init__(self, blocks: Iterable[Block], seed: int) -> None:
        draw = random.Random(seed)
        self.salt = draw.getrandbits(32)
        self.lives: dict[int, Life] = {}
        for block in sorted(blocks):
            key = int(block.prefix.network_address) >> 8
            if draw.random() < self.DARK:
                self.lives[key] = Life(0.0, False, False, 0.0, 0.0)
                continue
            density = math.exp(draw.uniform(math.log(0.01), math.log(0.9)))
            pick, acc = draw.random(), 0.0
            icmp, tcp = self.WAYS[-1][1:]
            for share, answers_icmp, answers_tcp in self.WAYS:
                acc += share
                if pick < acc:
                    icmp, tcp = answers_icmp, answers_tcp
                    break
            self.lives[key] = Life(density, icmp, tcp, draw.uniform(0.01, 0.03),
                                   draw.uniform(0.90, 1.0))
        self.cut: set[int] = set()
        self.icmp_filtered: set[int] = set()
        self.rng = random.Random(seed + 1)

    def live_host(self, address: int, life: Life) -> bool:
        return _mix(address ^ self.salt) < life.density

    def answers(self, target: Target) -> bool:
        """Whether this one probe gets a reply (losses drawn now)."""
        address = int(target.address)
        key = address >> 8
        life = self.lives[key]
        if key in self.cut or not self.live_host(address, life):
            return False
        if target.method is Method.ICMP:
            if not life.icmp or key in self.icmp_filtered:
                return False
        elif not life.tcp:
            return False
        return self.rng.random() < life.availability * (1.0 - life.loss)


class SimTransport:
    """The service's transport in the simulation: a reply after a round-trip time, or
    nothing after the probe's full timeout, both as virtual-time sleeps."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sent = 0

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def probe(self, target: Target, timeout: float) -> bool:
        self.sent += 1
        if self.world.answers(target):
            await asyncio.sleep(min(timeout, self.world.rng.uniform(0.05, 0.4)))
            return True
        await asyncio.sleep(timeout)
        return False


# -- the collector in the simulation -----------------------------------------------------------


def shipped_blocks_config(files: Sequence[str] = BLOCK_FILES, **changes: Any) -> OutsideConfig:
    """The ``outside:`` section over the shipped block files, defaults unless ``changes``."""
    config = OutsideConfig(enabled=True, block_files=tuple(files))
    return resolve(replace(config, **changes), ROOT / "configs" / "outside")


@dataclass
class Opened:
    at: float
    event: Event
    closed_at: float | None = None


@dataclass
class Sim:
    """The service, the engine and the pipeline's evaluations on one virtual loop."""

    config: OutsideConfig
    world: World
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    seed: int = 1

    def __post_init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(self.seed + 2)
        self.engine = Engine(self.detection)
        self.transport = SimTransport(self.world)
        self.service = OutsideService(self.config, on_readings=self._to_engine,
                                      params=self.detection.outside,
                                      make_transport=lambda: self.transport, wall=self.wall)
        self.opened: dict[str, Opened] = {}
        # (virtual wall time it came, the reading, whether from a confirmation)
        self.readings: list[tuple[float, OutsideReading, bool]] = []
        self._round_seen = 0
        self.round_seconds: list[float] = []
        self.round_starts: list[float] = []
        self.levels: list[tuple[float, str, str]] = []  # (time, "CC|network", monitor level)
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def wall(self) -> float:
        return EPOCH + self.loop.time()

    def _to_engine(self, readings: list[OutsideReading]) -> None:
        """What the collector's ``to_engine`` does (the engine takes every reading), and a
        log: a round's readings come after ``service.rounds`` moved, a confirmation's not."""
        now = self.wall()
        confirmation = self.service.rounds == self._round_seen
        self._round_seen = self.service.rounds
        for reading in readings:
            self.engine.add(reading)
            self.readings.append((now, reading, confirmation))
        if not confirmation and self.service.report is not None:
            # A round's report may come before the round's own end (the watched blocks first,
            # discovery after it): its length is the one until the report, the cycle is the
            # time from one round's start to the next.
            self.round_seconds.append(self.service.report.seconds)
            self.round_starts.append(self.service.report.started)
            for verdict in self.service.verdicts:
                if verdict.group.network:
                    self.levels.append((now, f"{verdict.group.country}|{verdict.group.network}",
                                        verdict.verdict.level.value))

    async def _pipeline(self) -> None:
        interval = self.detection.interval
        await asyncio.sleep(self.rng.uniform(0.0, interval))
        while True:
            now = self.wall()
            for event in self.engine.evaluate(now):
                seen = self.opened.setdefault(event.id, Opened(now, event))
                seen.event = event
                if event.status == "closed" and seen.closed_at is None:
                    seen.closed_at = now
            await asyncio.sleep(interval)

    async def _progress(self, every: float = DAY / 4) -> None:
        """A line on stderr every ``every`` virtual seconds: where the simulation is."""
        began = time.perf_counter()
        while True:
            await asyncio.sleep(every)
            prober = self.service.prober
            tried = 0 if prober is None else sum(
                1 for t in prober.tracks if t.rounds_since_discovery is not None)
            print(f"[{self.loop.time() / DAY:5.2f} days virtual, "
                  f"{time.perf_counter() - began:4.0f} s real] round {self.service.rounds}, "
                  f"blocks tried {tried}, probes {self.transport.sent:,}", file=sys.stderr)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.service.run(self.stop)),
                      asyncio.create_task(self._pipeline()),
                      asyncio.create_task(self._progress())]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.tasks[0], self.config.round * 10)
        for task in self.tasks[1:]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def until(self, ready: Callable[[], bool], limit: float, step: float = 5.0) -> bool:
        """Wait (virtual time) until ``ready()``, at most ``limit`` seconds; whether it was."""
        end = self.loop.time() + limit
        while not ready():
            if self.loop.time() >= end:
                return False
            await asyncio.sleep(step)
        return True

    async def rounds(self, count: int) -> None:
        mark = self.service.rounds
        await self.until(lambda: self.service.rounds >= mark + count, math.inf)

    @property
    def span(self) -> float:
        """A round's slot, or the time between the last two rounds' starts when rounds
        overrun it."""
        starts = self.round_starts[-2:]
        return max(self.config.round, starts[-1] - starts[0] if len(starts) == 2 else 0.0)

    async def warm_up(self) -> None:
        """Discovery as the collector does it, then a history of discovered rounds only (see
        the module docstring)."""
        await self.until(lambda: self.service.prober is not None, math.inf, 1.0)
        prober = self.service.prober
        assert prober is not None
        await self.until(lambda: discovered(prober), math.inf, 60.0)
        await self.rounds(prober.settings.rediscover_every + 1)
        self.service.monitor.load_json(json.dumps({"version": STATE_VERSION, "series": {}}))
        self.engine = Engine(self.detection)
        await self.rounds(self.detection.outside.min_history + 2)

    def blocks_of(self, network: str) -> list[int]:
        cc, _, asn = network.partition("|")
        return [int(b.prefix.network_address) >> 8 for b in self.service.blocks
                if (b.country, b.network) == (cc, asn)]

    def events_since(self, since: float) -> list[Opened]:
        return [o for o in self.opened.values() if o.at >= since]


    def level(self, network: str) -> str:
        cc, _, asn = network.partition("|")
        latest = self.service.monitor.latest.get((cc, asn))
        return "insufficient" if latest is None else latest.verdict.level.value

    def shutdowns_of(self, network: str, since: float) -> list[Opened]:
        cc, _, asn = network.partition("|")
        return [o for o in self.events_since(since)
                if o.event.kind == "shutdown" and o.event.cc == cc and asn in o.event.asns]


def discovered(prober: Prober) -> bool:
    """Discovery has done its first work: every network's watch set is full, or every block
    of the network has had its first pass (with no watch set: every block has)."""
    cap = prober.settings.watch_per_network
    return all(all(t.rounds_since_discovery is not None for t in members)
               or (cap and sum(1 for t in members if t.watched) >= cap)
               for members in prober.networks.values())


def names(opened: Opened) -> str:
    return f"{opened.event.cc}|{','.join(opened.event.asns)}"


# -- the cases ---------------------------------------------------------------------------------


@dataclass
class CutResult:
    network: str
    latency: float | None  # cut -> the evaluation that returned the event; None: no event
    to_round: float | None  # cut -> the round whose verdict for the network was critical
    to_confirmation: float | None  # cut -> the confirmation's reading after that round
    false: list[str]


@dataclass
class HoldResult:
    """A partial cut or an ICMP filter held for some rounds: what the verdicts said."""

    network: str
    share: float  # of the network's judged watched blocks, the share changed
    levels: list[str]
    events: int
    false: list[str]
    confirmations: dict[str, int]


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


async def _settle(sim: Sim, network: str, since: float) -> None:
    """Until the network's events since ``since`` are closed and it is judged normal again."""
    await sim.until(lambda: all(o.closed_at is not None for o in sim.shutdowns_of(network, since))
                    and sim.level(network) == "none", 12 * sim.span, 5.0)
    await sim.rounds(1)


async def cut(sim: Sim, network: str, limit_rounds: int = 6) -> CutResult:
    """All the network's blocks silent from a moment drawn uniformly within a round."""
    await asyncio.sleep(sim.rng.uniform(0.0, sim.span))
    keys = sim.blocks_of(network)
    start, first = sim.wall(), len(sim.readings)
    sim.world.cut.update(keys)
    await sim.until(lambda: bool(sim.shutdowns_of(network, start)),
                    limit_rounds * sim.span, 1.0)
    mine = sim.shutdowns_of(network, start)
    latency = min(o.at for o in mine) - start if mine else None
    critical = [t for t, n, level in sim.levels if t >= start and n == network
                and level == "critical"]
    to_round = critical[0] - start if critical else None
    confirmed = [t for t, r, conf in sim.readings[first:] if conf
                 and f"{r.cc}|{r.asn}" == network and critical and t >= critical[0]]
    to_confirmation = confirmed[0] - start if confirmed else None
    sim.world.cut.difference_update(keys)
    await _settle(sim, network, start)
    false = [names(o) for o in sim.events_since(start) if o not in sim.shutdowns_of(network, start)]
    return CutResult(network, latency, to_round, to_confirmation, false)


async def hold(sim: Sim, network: str, what: str, rounds: int = 4) -> HoldResult:
    """``what``: "half" (a random half of the network's blocks silent) or "icmp" (ICMP echo
    filtered on all of them), for ``rounds`` rounds from a moment within a round."""
    keys = sim.blocks_of(network)
    await asyncio.sleep(sim.rng.uniform(0.0, sim.span))
    start, before = sim.wall(), dict(sim.service.confirmations)
    changed = set(sim.rng.sample(keys, len(keys) // 2)) if what == "half" else set(keys)
    prober = sim.service.prober
    assert prober is not None
    judged = [int(t.block.prefix.network_address) >> 8 for t in prober.tracks
              if t.watched and t.state is not None
              and f"{t.block.country}|{t.block.network}" == network]
    share = sum(1 for k in judged if k in changed) / len(judged) if judged else 0.0
    target = sim.world.cut if what == "half" else sim.world.icmp_filtered
    target.update(changed)
    await sim.rounds(rounds)
    # The last round's confirmation, if any, and the pipeline run after it, still under it.
    await asyncio.sleep(sim.config.confirm_after + 4 * sim.config.timeout
                        + sim.detection.interval)
    target.difference_update(changed)
    levels = [level for t, n, level in sim.levels if t >= start and n == network]
    events = len(sim.shutdowns_of(network, start))
    confirmations = _delta(sim.service.confirmations, before)
    await _settle(sim, network, start)
    false = [names(o) for o in sim.events_since(start) if o not in sim.shutdowns_of(network, start)]
    return HoldResult(network, share, levels, events, false, confirmations)


@dataclass
class QuietResult:
    days: float
    events: list[str]
    confirmations: dict[str, int]
    warnings: int
    criticals: int
    looks: int


async def quiet(sim: Sim, days: float) -> QuietResult:
    """Nothing but the random losses for ``days``."""
    start, before, first = sim.wall(), dict(sim.service.confirmations), len(sim.levels)
    await asyncio.sleep(days * DAY)
    levels = [level for _, _, level in sim.levels[first:]]
    return QuietResult(days, [names(o) for o in sim.events_since(start)],
                       _delta(sim.service.confirmations, before),
                       levels.count("warning"), levels.count("critical"), len(levels))


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Report:
    config: OutsideConfig
    blocks: int
    judged: int
    round_seconds: list[float]
    cycles: list[float]
    warm_up: float
    sent: int
    cuts: list[CutResult]
    halves: list[HoldResult]
    icmp: list[HoldResult]
    quiet: QuietResult | None
    real: float


async def simulate(config: OutsideConfig, networks: Sequence[str], cuts: int, halves: int,
                   days: float, seed: int) -> Report:
    real = time.perf_counter()
    sim = Sim(config, World(OutsideService(config).blocks, seed), seed=seed)
    sim.start()
    await sim.warm_up()
    warm = sim.loop.time()
    first_round = len(sim.round_seconds)
    quiet_result = await quiet(sim, days) if days > 0 else None
    if quiet_result is not None:
        print(f"quiet {days:g} days: events {quiet_result.events}", file=sys.stderr)
    results: list[CutResult] = []
    for network in networks:
        for _ in range(cuts):
            results.append(await cut(sim, network))
            print(f"cut {network}: {results[-1]}", file=sys.stderr)
    half: list[HoldResult] = []
    icmp: list[HoldResult] = []
    for network in networks:
        for _ in range(halves):
            half.append(await hold(sim, network, "half"))
            print(f"half {network}: {half[-1]}", file=sys.stderr)
    for network in networks:
        icmp.append(await hold(sim, network, "icmp"))
        print(f"icmp {network}: {icmp[-1]}", file=sys.stderr)
    report = sim.service.report
    assert report is not None and sim.service.prober is not None
    judged = sum(1 for t in sim.service.prober.tracks if t.watched and t.state is not None)
    durations = sim.round_seconds[first_round:]
    starts = sim.round_starts[first_round:]
    cycles = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    await sim.close()
    return Report(config, len(sim.service.blocks), judged, durations, cycles, warm,
                  sim.transport.sent, results, half, icmp, quiet_result,
                  time.perf_counter() - real)


def rank(values: Sequence[float], share: float) -> float:
    """The nearest-rank quantile (``share`` 0.5: the median, 0.9: p90, 1: the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def minutes(value: float) -> str:
    return f"{value / 60:.1f}"


def cut_row(label: str, results: Sequence[CutResult]) -> str:
    found = [r.latency for r in results if r.latency is not None]
    missed = len(results) - len(found)
    false = sum(len(r.false) for r in results)
    if not found:
        return f"| {label} | {len(results)} | - | - | - | - | {missed} | {false} |"
    rounds = [r.to_round for r in results if r.to_round is not None]
    confirms = [r.to_confirmation for r in results if r.to_confirmation is not None]
    return (f"| {label} | {len(results)} | {minutes(rank(found, 0.5))} | "
            f"{minutes(rank(found, 0.9))} | {minutes(rank(found, 1.0))} | "
            f"{minutes(statistics.mean(found))} | {missed} | {false} | "
            f"{minutes(rank(rounds, 0.5)) if rounds else '-'} / "
            f"{minutes(rank(confirms, 0.5)) if confirms else '-'} |")


def hold_row(label: str, result: HoldResult) -> str:
    counts = {level: result.levels.count(level) for level in ("none", "warning", "critical")}
    return (f"| {label} {result.network} | {result.share:.2f} | {len(result.levels)} | "
            f"{counts['none']} / "
            f"{counts['warning']} / {counts['critical']} | {result.confirmations['dark']} / "
            f"{result.confirmations['recovered']} | {result.events} | {len(result.false)} |")


def render(report: Report) -> str:
    config = report.config
    watch = config.watch_per_network
    lines = [
        f"blocks: {report.blocks} listed, {report.judged} judged after warm-up; round "
        f"{config.round / 60:g} min, rate {config.rate:g}/s, watch per network "
        f"{watch or 'all'}",
        f"after warm-up, over {len(report.round_seconds)} rounds: round start to its report "
        f"median {minutes(rank(report.round_seconds, 0.5))} min, max "
        f"{minutes(max(report.round_seconds))}; start to next start median "
        f"{minutes(rank(report.cycles, 0.5))} min, max {minutes(max(report.cycles))}",
        f"virtual time: warm-up {report.warm_up / DAY:.2f} days; {report.sent:,} probes in "
        f"all; real time {report.real:.0f} s",
        "",
        "| cut (whole network) | cuts | median min | p90 | max | mean | missed | false events "
        "| to critical round / to confirmation (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for network in dict.fromkeys(r.network for r in report.cuts):
        lines.append(cut_row(network, [r for r in report.cuts if r.network == network]))
    if report.cuts:
        lines.append(cut_row("all", report.cuts))
    lines += ["", "| held 4 rounds | judged blocks changed | rounds | none / warning / "
              "critical | confirmations dark / recovered | events | false events |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [hold_row("half cut", r) for r in report.halves]
    lines += [hold_row("ICMP filtered", r) for r in report.icmp]
    if report.quiet is not None:
        q = report.quiet
        which = ": " + ", ".join(q.events) if q.events else ""
        lines += ["", f"quiet: {q.days:g} days, {len(q.events)} events "
                  f"({len(q.events) / q.days:.2f} per day{which}), "
                  f"{q.warnings} warning and {q.criticals} critical looks of {q.looks}, "
                  f"confirmations dark / recovered {q.confirmations['dark']} / "
                  f"{q.confirmations['recovered']}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round", type=parse_duration, default=None,
                        help="outside.round (default: the config's)")
    parser.add_argument("--rate", type=float, default=None, help="outside.rate")
    parser.add_argument("--watch", type=int, default=None,
                        help="outside.watch_per_network (0: every block)")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--cuts", type=int, default=10, help="cuts per network")
    parser.add_argument("--halves", type=int, default=2, help="half cuts per network")
    parser.add_argument("--days", type=float, default=1.0, help="quiet days")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--files", nargs="+", default=list(BLOCK_FILES))
    parser.add_argument("--quick", action="store_true", help="3 cuts, 1 half, a quarter day")
    args = parser.parse_args()
    if args.quick:
        args.cuts, args.halves, args.days = 3, 1, 0.25
    changes: dict[str, Any] = {}
    if args.round is not None:
        changes["round"] = args.round
    if args.rate is not None:
        changes["rate"] = args.rate
    if args.watch is not None:
        changes["watch_per_network"] = args.watch
    config = shipped_blocks_config(args.files, **changes)
    report = run_virtual(simulate(config, args.networks, args.cuts, args.halves, args.days,
                                  args.seed))
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
