"""Seeded synthetic fleets with ground truth, for the detection evaluation and its tests.

A fleet is one country with a few ASNs (an incumbent, fixed and mobile operators), probes on
each, and a target list. Time runs in ticks; every tick the simulator emits what the collector
would have received by then (heartbeats, uploads of rounds with their original measurement
times, ladder readings buffered through a blackout and uploaded after it) and asks the engine
to evaluate, exactly as the pipeline does.

Noise, so that quiet days are not trivially quiet:
* heartbeats: jitter, random misses (1% per beat, 5% on flaky probes);
* probes: volunteers switching off (0.3 outages a day, mean 40 min; flaky probes 5x), churn
  (some probes join late or leave for good), one probe per fleet with a local DNS filter that
  "blocks" a few targets for ever, one with a resolver that dies for an hour twice a day;
* targets: sites going down for everyone (control included), transient timeouts and
  inconclusive runs, CDN trouble on one ASN for one target (10-40 min, partial failures);
* timing: per-target and per-probe handshake levels, an evening peak, per-run jitter; rounds
  optionally jittered as the probe's scheduler does (``jitter``).

Injections (ground truth): shutdowns of the whole country, of one ASN, of the mobile ASNs
(silent heartbeats, no runs, ladder readings with the cause, uploaded after the end); blocks of
a set of targets on all ASNs or one, by one mechanism each (leaky: 2% of runs still pass);
targeted throttling of one target (TLS handshakes 8-30x slower, half the runs judged
``throttled`` by the probe); generalized slowdown of one ASN (everything 2.5-4x slower).
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.detect.engine import Engine
from collector.detect.model import Event, LadderReading, Run

DAY = 86400.0
HOUR = 3600.0
EPOCH = 1_700_000_000.0 - 1_700_000_000.0 % DAY  # a midnight UTC in November 2023

# (layer, mechanism, fingerprint) for each block mechanism the bench injects.
MECHANISMS = {
    "dns_nxdomain": ("dns", "nxdomain", None),
    "tcp_reset": ("tcp", "reset", None),
    "tls_timeout": ("tls", "timeout", None),
    "http_blockpage": ("http", "blockpage", "blockpage:kz_blocked_by_court"),
    "tls_mitm": ("tls", "mitm", "issuer:Qaznet Trust Network"),
}


@dataclass(frozen=True, slots=True)
class AsnSpec:
    asn: str
    probes: int
    mobile: bool = False
    incumbent: bool = False


DEFAULT_ASNS = (
    AsnSpec("AS9198", 12, incumbent=True),
    AsnSpec("AS64501", 8),
    AsnSpec("AS64510", 8, mobile=True),
    AsnSpec("AS64511", 6, mobile=True),
    AsnSpec("AS64512", 6, mobile=True),
)


@dataclass(frozen=True, slots=True)
class Injection:
    """One injected incident: the ground truth an event must match."""

    label: str  # national_shutdown, asn_block:tcp_reset, sni_throttle, ...
    kind: str  # shutdown | block | throttling
    asns: tuple[str, ...]
    targets: tuple[str, ...]
    start: float
    end: float
    mechanism: str | None = None  # key of MECHANISMS for blocks
    cause: str = "international_cut"
    factor: float = 1.0  # slowdown factor for throttling


@dataclass(frozen=True, slots=True)
class Noise:
    heartbeat_miss: float = 0.01
    flaky_share: float = 0.1
    outages_per_day: float = 0.3
    outage_minutes: float = 40.0
    churn_share: float = 0.2
    transient_timeout: float = 0.003
    transient_inconclusive: float = 0.005
    site_down_per_day: float = 0.2
    cdn_trouble_per_day: float = 0.5  # per ASN, on a random target
    filtered_targets: int = 4  # the probe with a local DNS filter
    broken_resolver_per_day: float = 2.0  # the probe whose resolver dies for an hour


@dataclass(frozen=True, slots=True)
class FleetSpec:
    seed: int = 1
    cc: str = "KZ"
    asns: tuple[AsnSpec, ...] = DEFAULT_ASNS
    targets: int = 60
    start: float = EPOCH
    days: float = 30.0
    heartbeat: float = 60.0
    cycle: float = 900.0  # target measurement cadence
    jitter: float = 0.0  # each round comes cycle * (1 +- jitter) after the last (probe default 0.2)
    window: tuple[float, float] | None = None  # an event window: rounds ``speedup`` times faster
    speedup: float = 4.0  # the probe's ``schedule.event_speedup``
    tick: float = 30.0  # pipeline cadence
    warmup: float = DAY  # simulated before ``start``, so that baselines have a history
    noise: Noise = field(default_factory=Noise)
    injections: tuple[Injection, ...] = ()

    @property
    def end(self) -> float:
        return self.start + self.days * DAY

    def target_urls(self) -> list[str]:
        return [f"https://site{i:02d}.example/" for i in range(self.targets)]


@dataclass(slots=True)
class Probe:
    probe_id: str
    asn: str
    join: float
    leave: float
    miss: float
    outages: list[tuple[float, float]]
    level: float  # handshake multiplier of this vantage
    next_heartbeat: float
    next_round: float
    filtered: frozenset[str] = frozenset()
    resolver_deaths: list[tuple[float, float]] = field(default_factory=list)
    buffered: list[LadderReading] = field(default_factory=list)


def _intervals(rng: random.Random, start: float, end: float, per_day: float,
               mean: float) -> list[tuple[float, float]]:
    out = []
    t = start
    while per_day > 0:
        t += rng.expovariate(per_day / DAY)
        if t >= end:
            break
        out.append((t, t + rng.expovariate(1 / mean)))
    return out


def _inside(intervals: list[tuple[float, float]], t: float) -> bool:
    """Whether ``t`` is in one of ``intervals`` (sorted by start; they may overlap)."""
    index = bisect.bisect_right(intervals, (t, math.inf))
    return any(a <= t < b for a, b in intervals[max(0, index - 3):index])


class Fleet:
    """The simulated world; ``run`` drives an engine through it."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        rng = self.rng = random.Random(spec.seed)
        noise = spec.noise
        self.now: float | None = None
        self.heap: list[tuple[float, int, object]] = []
        self.sequence = 0
        self.targets = spec.target_urls()
        self.target_level = {t: math.exp(rng.gauss(math.log(0.15), 0.5)) for t in self.targets}
        self.probes: list[Probe] = []
        for asn in spec.asns:
            for i in range(asn.probes):
                join, leave = spec.start - spec.warmup - DAY, spec.end + DAY
                if rng.random() < noise.churn_share:
                    if rng.random() < 0.5:
                        join = rng.uniform(spec.start, spec.end)
                    else:
                        leave = rng.uniform(spec.start, spec.end)
                flaky = rng.random() < noise.flaky_share
                self.probes.append(Probe(
                    probe_id=f"{asn.asn.lower()}-p{i:02d}", asn=asn.asn, join=join, leave=leave,
                    miss=noise.heartbeat_miss * (5 if flaky else 1),
                    outages=_intervals(rng, spec.start - spec.warmup, spec.end,
                                       noise.outages_per_day * (5 if flaky else 1),
                                       noise.outage_minutes * 60),
                    level=math.exp(rng.gauss(0, 0.3)),
                    next_heartbeat=spec.start - spec.warmup + rng.uniform(0, spec.heartbeat),
                    next_round=spec.start - spec.warmup + rng.uniform(0, spec.cycle)))
        filtered = self.probes[rng.randrange(len(self.probes))]
        filtered.filtered = frozenset(rng.sample(self.targets, noise.filtered_targets))
        broken = self.probes[rng.randrange(len(self.probes))]
        broken.resolver_deaths = _intervals(rng, spec.start - spec.warmup, spec.end,
                                            noise.broken_resolver_per_day, HOUR)
        self.site_down = {t: _intervals(rng, spec.start - spec.warmup, spec.end,
                                        noise.site_down_per_day, 1200.0) for t in self.targets}
        self.cdn_trouble: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for asn in spec.asns:
            for a, b in _intervals(rng, spec.start - spec.warmup, spec.end,
                                   noise.cdn_trouble_per_day, 1500.0):
                target = rng.choice(self.targets)
                self.cdn_trouble.setdefault((asn.asn, target), []).append(
                    (a, min(b, a + 2400.0), rng.uniform(0.2, 0.6)))

    # -- the world at time t ---------------------------------------------------------------

    def _shutdown(self, asn: str, t: float) -> Injection | None:
        for injection in self.spec.injections:
            if injection.kind == "shutdown" and asn in injection.asns and \
                    injection.start <= t < injection.end:
                return injection
        return None

    def _affecting(self, kind: str, asn: str, target: str, t: float) -> Injection | None:
        for injection in self.spec.injections:
            if injection.kind == kind and asn in injection.asns and \
                    injection.start <= t < injection.end and \
                    (not injection.targets or target in injection.targets):
                return injection
        return None

    def cycle(self, t: float) -> float:
        """The target cadence at ``t``: faster inside the event window."""
        window = self.spec.window
        if window is not None and window[0] <= t < window[1]:
            return self.spec.cycle / self.spec.speedup
        return self.spec.cycle

    def _alive(self, probe: Probe, t: float) -> bool:
        return probe.join <= t < probe.leave and not _inside(probe.outages, t)

    def _run(self, probe: Probe, target: str, t: float) -> Run:
        rng, spec, noise = self.rng, self.spec, self.spec.noise
        base = dict(probe_id=probe.probe_id, cc=spec.cc, asn=probe.asn, target=target, t=t)
        block = self._affecting("block", probe.asn, target, t)
        if block is not None and rng.random() >= 0.02:
            assert block.mechanism is not None
            layer, mechanism, fingerprint = MECHANISMS[block.mechanism]
            return Run(**base, outcome="blocked", layer=layer,  # type: ignore[arg-type]
                       mechanism=mechanism, fingerprint=fingerprint, failed=True)
        if _inside(self.site_down[target], t):
            return Run(**base, outcome="down", layer="tcp",  # type: ignore[arg-type]
                       mechanism="timeout", failed=True)
        if _inside(probe.resolver_deaths, t) or target in probe.filtered:
            mechanism = "servfail" if target not in probe.filtered else "nxdomain"
            return Run(**base, outcome="blocked", layer="dns",  # type: ignore[arg-type]
                       mechanism=mechanism, failed=True)
        for a, b, share in self.cdn_trouble.get((probe.asn, target), ()):
            if a <= t < b and rng.random() < share:
                return Run(**base, outcome="blocked", layer="tls",  # type: ignore[arg-type]
                           mechanism="timeout", failed=True)
        draw = rng.random()
        if draw < noise.transient_timeout:
            return Run(**base, outcome="blocked", layer="tcp",  # type: ignore[arg-type]
                       mechanism="timeout", failed=True)
        if draw < noise.transient_timeout + noise.transient_inconclusive:
            return Run(**base, outcome="inconclusive", failed=False)  # type: ignore[arg-type]
        hour = (t % DAY) / HOUR
        evening = 1 + 0.35 * max(0.0, math.cos(2 * math.pi * (hour - 19) / 24))
        handshake = self.target_level[target] * probe.level * evening * \
            math.exp(rng.gauss(0, 0.25))
        outcome = "ok"
        mechanism = None
        throttle = self._affecting("throttling", probe.asn, target, t)
        if throttle is not None:
            handshake *= throttle.factor
            if throttle.targets and rng.random() < 0.5:
                outcome, mechanism = "throttled", "sni_throttle"
        return Run(**base, outcome=outcome, mechanism=mechanism,  # type: ignore[arg-type]
                   handshake=handshake)

    # -- driving ---------------------------------------------------------------------------

    def run(self, engine: Engine, on_tick: Callable[[float, list[Event]], None] | None = None,
            until: float | None = None) -> None:
        """Feed ``engine`` tick by tick from ``warmup`` before ``start`` to ``until``
        (the end by default). Calling it again goes on from where it stopped, with any engine:
        the world does not depend on what the engine makes of it."""
        spec, rng = self.spec, self.rng
        end = spec.end if until is None else until
        if self.now is None:
            self.now = spec.start - spec.warmup
        for probe in self.probes:
            engine.set_probe(probe.probe_id, spec.cc, probe.asn)
        heap = self.heap
        while self.now < end:
            self.now += spec.tick
            t = self.now
            for probe in self.probes:
                while probe.next_heartbeat <= t:
                    at = probe.next_heartbeat
                    probe.next_heartbeat += spec.heartbeat + rng.uniform(-2.0, 2.0)
                    if self._alive(probe, at) and self._shutdown(probe.asn, at) is None and \
                            rng.random() >= probe.miss:
                        self.sequence += 1
                        heapq.heappush(heap, (at + rng.uniform(0.1, 2.0), self.sequence, probe))
                while probe.next_round <= t:
                    at = probe.next_round
                    cycle = self.cycle(at)
                    probe.next_round += cycle if not spec.jitter else \
                        cycle * (1 + rng.uniform(-spec.jitter, spec.jitter))
                    self._round(probe, at)
            while heap and heap[0][0] <= t:
                arrival, _, item = heapq.heappop(heap)
                if isinstance(item, Probe):
                    engine.contact(item.probe_id, arrival)
                else:
                    assert isinstance(item, list)
                    for observation in item:
                        engine.add(observation)
            changed = engine.evaluate(t)
            if on_tick is not None:
                on_tick(t, changed)

    def _push(self, arrival: float, item: object) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (arrival, self.sequence, item))

    def _round(self, probe: Probe, at: float) -> None:
        if not self._alive(probe, at):
            return
        spec, rng = self.spec, self.rng
        shutdown = self._shutdown(probe.asn, at)
        if shutdown is not None:
            # The probe notices within a heartbeat that it cannot reach the collector, climbs
            # its ladder every minute through the blackout and uploads the readings when the
            # network is back.
            minute = probe.buffered[-1].t + 60.0 if probe.buffered else \
                shutdown.start + rng.uniform(0.0, spec.heartbeat)
            while minute < min(at + self.cycle(at), shutdown.end):
                probe.buffered.append(LadderReading(probe.probe_id, spec.cc, probe.asn,
                                                    minute, False, shutdown.cause))
                minute += 60.0
            if at + self.cycle(at) >= shutdown.end and probe.buffered:
                self._push(shutdown.end + rng.uniform(5.0, 60.0), list(probe.buffered))
                probe.buffered.clear()
            return
        batch: list[LadderReading | Run] = [
            LadderReading(probe.probe_id, spec.cc, probe.asn, at, True, "online")]
        for target in self.targets:
            batch.append(self._run(probe, target, at + rng.uniform(0.0, 40.0)))
        self._push(at + 60.0, batch)
        self._push(at + 60.0, probe)  # the upload is a contact too
