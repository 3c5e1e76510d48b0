"""The detection engine: every detector's state in one object, fed observations, asked to judge.

Pure: no I/O, no wall clock, no logging. The caller (``collector/pipeline.py`` in production,
``bench/`` and the tests elsewhere) feeds it

* ``set_probe(probe, cc, asn)``: where a probe is (from its measurements);
* ``contact(probe, t)``: the collector heard from the probe at ``t`` (heartbeat or upload);
* ``add(observation)``: a ``Run`` or a ``LadderReading`` from ``extract``;

and calls ``evaluate(now)``, which settles the bins that are complete (``block.bin`` wide,
``block.settle`` after their end), runs the bin detectors on them in time order (collapse,
generalized slowdown, then per (ASN, target) blocking and targeted throttling), tests heartbeat
silence per ASN and per country at ``now``, folds every signal into the tracker and returns
the events that changed. ``to_state``/``from_state`` serialize everything as JSON-ready data so
the pipeline can persist it and resume.

Order of precedence, so that one incident is reported once: a network whose probes collapsed in
a bin contributes nothing to that bin's per-target series (a shutdown is not 60 blocks), and
new block or throttling members are not opened on an ASN inside an open shutdown. A bin where
the whole network is slow is neutral for targeted throttling (it is generalized).

Bins are settled per network: an observation is late, counted in ``late`` and dropped from the
bin detectors (ladder readings are still kept: they backfill shutdown starts), only when its
network's bin has already been judged. A network that went dark has no bins judged meanwhile,
so its probes' backlog, uploaded afterwards with the original timestamps, is judged in its own
bins (blocks that began in the dark, the ladder's offline readings) while the other networks
went on.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from collector.detect import (
    baseline,
    blocking,
    collapse,
    ladder,
    silence,
    state_shapes,
    throttling,
)
from collector.detect.model import LIKELY, NONE, SUSPECTED, Event, LadderReading, Run, Signal
from collector.detect.outside import DETECTOR as OUTSIDE_DETECTOR
from collector.detect.params import DetectionConfig
from collector.detect.stats import median
from collector.detect.tracker import Context, Tracker
from collector.detect.windows import Calendar

LADDER_KEEP = 2 * 86400.0  # ladder readings kept per probe for backfill
STATE_VERSION = 2  # 2: each part saved with its shape (``state_shapes``)


@dataclass(slots=True)
class ProbeInfo:
    cc: str | None = None
    asn: str | None = None
    live: silence.Liveness | None = None
    last_observation: float | None = None
    ladder: list[list[Any]] = field(default_factory=list)  # [t, online, cause]

    def last_activity(self) -> float | None:
        times = [t for t in (self.live.last_seen if self.live else None,
                             self.last_observation) if t is not None]
        return max(times) if times else None


@dataclass(slots=True)
class ProbeBin:
    cc: str
    asn: str
    ok: set[str] = field(default_factory=set)
    tried: int = 0
    failed: int = 0
    ladder_offline: bool = False


@dataclass(slots=True)
class GroupState:
    """Heartbeat-silence state of one group (an ASN, or a whole country)."""

    onset: float | None = None
    probes: list[str] = field(default_factory=list)
    asns: list[str] = field(default_factory=list)
    level: int = NONE
    not_firing_since: float | None = None


def _run_to_list(run: Run) -> list[Any]:
    return [run.probe_id, run.cc, run.asn, run.target, run.t, run.outcome, run.layer,
            run.mechanism, run.fingerprint, run.handshake, run.slowdown, run.failed,
            run.control_failed]


def _run_from_list(data: list[Any]) -> Run:
    return Run(*data)


class Engine:
    """All detection state. See the module docstring for the contract."""

    def __init__(self, config: DetectionConfig, calendar: Calendar | None = None) -> None:
        self.config = config
        self.calendar = calendar or Calendar()
        self.tracker = Tracker(config)
        self.probes: dict[str, ProbeInfo] = {}
        self.pending: dict[int, dict[str, Any]] = {}  # bin index -> {"runs": [...], ...}
        self.last_settled: int | None = None
        self.settled: dict[str, int] = {}  # "cc|asn" -> the network's last judged bin
        self.settled_default: int | None = None  # for a state saved before per-network bins
        self.prev_ok: dict[str, int] = {}
        self.blocks: dict[str, blocking.BlockSeries] = {}
        self.throttles: dict[str, throttling.ThrottleSeries] = {}
        self.collapses: dict[str, collapse.CollapseSeries] = {}
        self.slowdowns: dict[str, throttling.SlowdownSeries] = {}
        self.target_baselines: dict[str, baseline.HourlyBaseline] = {}
        self.probe_baselines: dict[str, baseline.HourlyBaseline] = {}
        self.groups: dict[str, GroupState] = {}
        self.blind_until: float | None = None
        self.late = 0
        self.blind_evaluations = 0
        self.new_readings: set[str] = set()  # probes with ladder readings not yet backfilled
        self.state_changes: list[state_shapes.StateChange] = []  # made by from_state
        # Outside-in statements (collector.outside) not yet folded in, and when the outside-in
        # signal last said each network ("cc|asn") answers. Both are transient: the prober
        # states every network again each round (ten minutes), so a restart loses one round.
        self.outside: list[Signal] = []
        self.outside_reachable: dict[str, float] = {}

    # -- input -----------------------------------------------------------------------------

    def _probe(self, probe_id: str) -> ProbeInfo:
        info = self.probes.get(probe_id)
        if info is None:
            info = self.probes[probe_id] = ProbeInfo()
        return info

    def set_probe(self, probe_id: str, cc: str, asn: str) -> None:
        info = self._probe(probe_id)
        info.cc, info.asn = cc, asn

    def listening_since(self, t: float) -> None:
        """The collector has been receiving since ``t``: silence before it is not the probes'."""
        self.blind_until = t

    def contact(self, probe_id: str, t: float) -> None:
        info = self._probe(probe_id)
        if info.live is None:
            info.live = silence.Liveness(first_seen=t, last_seen=t)
            return
        gap_start = info.live.last_seen
        counted = not (info.cc and (self.calendar.frozen(info.cc, gap_start)
                                    or self.calendar.frozen(info.cc, t)))
        if counted and t - gap_start > self.config.silence.heartbeat_interval:
            counted = probe_id not in self._silent_probes()
        silence.record_contact(info.live, t, self.config.silence, counted)

    def _silent_probes(self) -> set[str]:
        out = {p for g in self.groups.values() if g.onset is not None for p in g.probes}
        return out | self.tracker.open_probes("shutdown")

    def add(self, observation: Run | LadderReading) -> None:
        info = self._probe(observation.probe_id)
        info.cc, info.asn = observation.cc, observation.asn
        info.last_observation = max(info.last_observation or observation.t, observation.t)
        if isinstance(observation, LadderReading):
            info.ladder.append([observation.t, observation.online, observation.cause])
            self.new_readings.add(observation.probe_id)
            if len(info.ladder) > 64 and info.ladder[0][0] < observation.t - LADDER_KEEP:
                newest = max(r[0] for r in info.ladder)
                info.ladder = [r for r in info.ladder if r[0] >= newest - LADDER_KEEP]
        index = math.floor(observation.t / self.config.block.bin)
        done = self.settled.get(f"{observation.cc}|{observation.asn}", self.settled_default)
        if done is not None and index <= done:
            self.late += 1
            return
        pending = self.pending.setdefault(index, {"runs": {}, "probes": {}})
        probe_bin = pending["probes"].get(observation.probe_id)
        if probe_bin is None:
            probe_bin = pending["probes"][observation.probe_id] = ProbeBin(
                observation.cc, observation.asn)
        if isinstance(observation, LadderReading):
            probe_bin.ladder_offline = probe_bin.ladder_offline or not observation.online
            return
        pending["runs"].setdefault((observation.asn, observation.target), []).append(observation)
        if not observation.control_failed or observation.outcome == "ok":
            # A failure the control could not check is no try (the monitor's own outage).
            probe_bin.tried += 1
            probe_bin.failed += observation.failed
        counts_for_health = not self.config.canaries or observation.target in self.config.canaries
        if observation.outcome == "ok" and counts_for_health:
            probe_bin.ok.add(observation.target)

    def add_outside(self, signals: Iterable[Signal]) -> None:
        """Outside-in shutdown statements, one per network and country per probing round
        (``collector.outside.signal.SignalMaker``); folded in at the next evaluation."""
        for signal in signals:
            if signal.asn is not None:
                key = f"{signal.cc}|{signal.asn}"
                if signal.level == NONE:
                    self.outside_reachable[key] = signal.at
                else:
                    self.outside_reachable.pop(key, None)
            self.outside.append(signal)

    def _outside_agreement(self, now: float, context: Context) -> list[Event]:
        """Say on every open shutdown whether the outside-in signal agrees: ``agrees`` when
        it is a member beside another detector, ``network reachable from outside`` when the
        probes went silent but every network of the event answered the prober lately."""
        changed = []
        horizon = now - self.config.stale_after
        for event in list(self.tracker.events.values()):
            if event.kind != "shutdown" or not event.open:
                continue
            detectors = {m.detector for m in event.members.values()}
            asns = {a for m in event.members.values() for a in m.asns}
            if OUTSIDE_DETECTOR in detectors:
                text = "agrees" if len(detectors) > 1 else "outside-in only"
            elif asns and all(self.outside_reachable.get(f"{event.cc}|{a}", -math.inf) >= horizon
                              for a in asns):
                text = "probes silent, network reachable from outside"
            else:
                continue
            amended = self.tracker.amend(event.id, None, {"outside_in": text}, now, context)
            if amended is not None:
                changed.append(amended)
        return changed

    # -- evaluation ------------------------------------------------------------------------

    def _active(self, now: float) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        horizon = now - self.config.silence.active_window
        per_asn: Counter[tuple[str, str]] = Counter()
        for info in self.probes.values():
            last = info.last_activity()
            if info.cc and info.asn and last is not None and last >= horizon:
                per_asn[(info.cc, info.asn)] += 1
        per_cc: Counter[str] = Counter(cc for cc, _ in per_asn)
        return dict(per_asn), dict(per_cc)

    def _context(self, now: float, per_cc_asns: dict[str, int]) -> Context:
        windows: dict[str, str] = {}
        for window in self.calendar.active(None, now):
            windows.setdefault(window.cc, window.name)
        return Context(roles=self.config.networks, active_asns=per_cc_asns, windows=windows)

    def evaluate(self, now: float) -> list[Event]:
        """Settle complete bins, test silence at ``now``; returns the events that changed."""
        active, _ = self._active(now)
        asns_per_cc = dict(Counter(cc for cc, _ in active))
        signals: list[Signal] = []
        bin_width = self.config.block.bin
        for index in sorted(self.pending):
            if (index + 1) * bin_width + self.config.block.settle > now:
                break
            signals.extend(self._settle(index, active))
        signals.extend(self._silence(now, active))
        signals.extend(self.outside)
        self.outside = []
        shutdown_asns = {cc: self.tracker.open_asns("shutdown", cc)
                         for cc in {s.cc for s in signals}}
        kept = [s for s in signals
                if s.kind == "shutdown" or self.tracker.is_open(s.key)
                or s.asn not in shutdown_asns.get(s.cc, set())]
        context = self._context(now, asns_per_cc)
        # The ladder refines open shutdowns before the signals are folded in (a shutdown may
        # close in this very evaluation, just as the readings of its blackout arrive), and the
        # events those signals opened or changed afterwards.
        changed = {e.id: e for e in self._backfill(now, context, set())}
        for event in self.tracker.apply(kept, now, context):
            changed[event.id] = event
        for event in self._backfill(now, context, set(changed)):
            changed[event.id] = event
        for event in self._outside_agreement(now, context):
            changed[event.id] = event
        self.new_readings.clear()
        return [changed[k] for k in sorted(changed)]

    def open_events(self, now: float) -> list[Event]:
        _, per_cc = self._active(now)
        context = self._context(now, per_cc)
        return [self.tracker.to_event(e, context) for e in self.tracker.events.values()]

    # -- bins ------------------------------------------------------------------------------

    def _settle(self, index: int, active: dict[tuple[str, str], int]) -> list[Signal]:
        pending = self.pending.pop(index)
        in_order = self.last_settled is None or index > self.last_settled
        self.last_settled = index if in_order else self.last_settled
        config = self.config
        start = index * config.block.bin
        end = start + config.block.bin
        probe_bins: dict[str, ProbeBin] = pending["probes"]
        runs: dict[tuple[str, str], list[Run]] = pending["runs"]
        healthy = {p: not b.ladder_offline and
                   len(b.ok) + self.prev_ok.get(p, 0) >= config.block.health_min_ok
                   for p, b in probe_bins.items()}
        ok_now = {p: len(b.ok) for p, b in probe_bins.items()}
        # A dark network's backlog judged late only updates its own probes.
        self.prev_ok = ok_now if in_order else {**self.prev_ok, **ok_now}
        signals: list[Signal] = []
        frozen_cc = {b.cc: self.calendar.frozen(b.cc, start) for b in probe_bins.values()}
        for b in probe_bins.values():
            network = f"{b.cc}|{b.asn}"
            self.settled[network] = max(index, self.settled.get(network, index))

        # Collapse, per network.
        networks: dict[tuple[str, str], list[str]] = defaultdict(list)
        for probe_id, b in probe_bins.items():
            networks[(b.cc, b.asn)].append(probe_id)
        collapsed_networks = set()
        for (cc, asn), probe_ids in sorted(networks.items()):
            collapsed = tuple(sorted(
                p for p in probe_ids if collapse.probe_collapsed(
                    probe_bins[p].tried, probe_bins[p].failed, probe_bins[p].ladder_offline,
                    config.collapse)))
            key = f"{cc}|{asn}"
            series = self.collapses.get(key)
            if series is None and not collapsed:
                continue
            series = self.collapses.setdefault(key, collapse.CollapseSeries())
            the_bin = collapse.CollapseBin(
                start=start, end=end, reporting=tuple(sorted(probe_ids)), collapsed=collapsed,
                offline_ladders=sum(probe_bins[p].ladder_offline for p in collapsed))
            signal = collapse.step(series, the_bin, cc, asn, active.get((cc, asn), 0),
                                   config.collapse, config.tiers)
            signals.append(signal)
            hot = len(collapsed) >= config.tiers.floor and \
                len(collapsed) >= config.collapse.network_share * len(probe_ids)
            if hot:
                collapsed_networks.add((cc, asn))
            self._forget_if_idle(self.collapses, key, series.streak.run_start, signal)

        # Generalized slowdown, per network. Each healthy probe's slowness in this bin is the
        # median over its targets of handshake / that target's baseline on this network (so
        # the mix of targets it reached does not matter), judged against the probe's own
        # history of that number (so a vantage that is always a little slower does not either).
        slow_networks = set()
        per_network_ratios: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        relative: dict[str, list[float]] = defaultdict(list)
        for (asn, target), target_runs in runs.items():
            base = self.target_baselines.get(f"{target_runs[0].cc}|{asn}|{target}")
            expected = baseline.predict(base, start, config.throttle) if base else None
            if not expected:
                continue
            for run in target_runs:
                if healthy.get(run.probe_id) and run.handshake is not None:
                    relative[run.probe_id].append(run.handshake / expected)
        slowdown_open = {k for k in self.slowdowns if self.tracker.is_open(
            f"slowdown|{k}|*")}
        for probe_id, values in relative.items():
            b = probe_bins[probe_id]
            value = median(values)
            assert value is not None
            base = self.probe_baselines.setdefault(probe_id, baseline.HourlyBaseline())
            expected = baseline.predict(base, start, config.throttle)
            if expected:
                per_network_ratios[(b.cc, b.asn)][probe_id] = value / expected
            frozen = frozen_cc[b.cc] or f"{b.cc}|{b.asn}" in slowdown_open
            baseline.add(base, start, value, config.throttle, frozen)
        for (cc, asn), ratios in sorted(per_network_ratios.items()):
            if (cc, asn) in collapsed_networks:
                continue
            key = f"{cc}|{asn}"
            the_slow_bin = throttling.SlowdownBin(start=start, end=end, ratios=ratios)
            if throttling.generally_slow(the_slow_bin, config.throttle, config.tiers):
                slow_networks.add((cc, asn))
            elif key not in self.slowdowns:
                continue
            series_s = self.slowdowns.setdefault(key, throttling.SlowdownSeries())
            signal = throttling.step_slowdown(series_s, the_slow_bin, cc, asn,
                                              active.get((cc, asn), 0), config.throttle,
                                              config.tiers)
            signals.append(signal)
            self._forget_if_idle(self.slowdowns, key, series_s.streak.run_start, signal)

        # Per (ASN, target): blocking and targeted throttling, healthy probes only.
        for (asn, target), target_runs in sorted(runs.items()):
            cc = target_runs[0].cc
            if (cc, asn) in collapsed_networks:
                continue
            good = [r for r in target_runs if healthy.get(r.probe_id)]
            if not good:
                continue
            key = f"{cc}|{asn}|{target}"
            signals.extend(self._block_bin(key, cc, asn, target, good, end, active))
            # Too few vantage points in the bin: the throttling detector pools it. A network
            # inside a generalized slowdown is neutral even in a bin too sparse to show it.
            slowdown = self.slowdowns.get(f"{cc}|{asn}")
            generalized = (cc, asn) in slow_networks or (
                slowdown is not None and slowdown.streak.run_start is not None)
            signals.extend(self._throttle_bin(key, cc, asn, target, good, start, end,
                                              active, generalized, frozen_cc[cc]))
        return signals

    def _forget_if_idle(self, table: dict[str, Any], key: str, run_start: float | None,
                        signal: Signal) -> None:
        """Drop a series that holds nothing: no run, no open member. Keeps state small."""
        if run_start is None and signal.level == NONE and not self.tracker.is_open(signal.key):
            table.pop(key, None)

    def _block_bin(self, key: str, cc: str, asn: str, target: str, good: list[Run],
                   end: float, active: dict[tuple[str, str], int]) -> list[Signal]:
        usable = [blocking.BlockRun(r.probe_id, r.t, r.outcome == "blocked",
                                    f"{r.layer or ''}:{r.mechanism or ''}", r.fingerprint)
                  for r in good if r.outcome in ("ok", "blocked", "throttled")]
        series = self.blocks.get(key)
        if series is None and not any(r.blocked for r in usable):
            return []
        if not usable:
            return []
        series = self.blocks.setdefault(key, blocking.BlockSeries())
        signal = blocking.step(series, usable, end, cc, asn, target, active.get((cc, asn), 0),
                               self.config.block, self.config.tiers)
        if series.idle() and signal.level == NONE and not self.tracker.is_open(signal.key):
            del self.blocks[key]
        return [signal]

    def _throttle_bin(self, key: str, cc: str, asn: str, target: str, good: list[Run],
                      start: float, end: float, active: dict[tuple[str, str], int],
                      generalized: bool, frozen_cc: bool) -> list[Signal]:
        config = self.config.throttle
        base = self.target_baselines.setdefault(key, baseline.HourlyBaseline())
        expected = baseline.predict(base, start, config)
        ratios: list[float] = []
        slow_probes: set[str] = set()
        counted_probes: set[str] = set()
        throttled = 0
        counted = 0
        mechanisms: Counter[str] = Counter()
        for run in good:
            if run.outcome not in ("ok", "throttled"):
                continue
            ratio = run.slowdown
            if ratio is None and run.handshake is not None and expected:
                ratio = run.handshake / expected
            is_throttled = run.outcome == "throttled"
            counted += 1
            counted_probes.add(run.probe_id)
            if ratio is not None:
                ratios.append(ratio)
            if is_throttled:
                throttled += 1
                if run.mechanism:
                    mechanisms[run.mechanism] += 1
            if is_throttled or (ratio is not None and ratio >= config.warn_ratio):
                slow_probes.add(run.probe_id)
        series_open = self.tracker.is_open(f"throttle|{key}")
        frozen = frozen_cc or series_open
        for run in good:
            # A run the probe itself judged throttled is an anomaly: it never trains the
            # baseline, whatever the inpainting would have made of it.
            if run.handshake is not None and run.outcome == "ok" and run.slowdown is None:
                baseline.add(base, start, run.handshake, config, frozen)
        series = self.throttles.get(key)
        if counted == 0 or (series is None and not slow_probes):
            return []
        series = self.throttles.setdefault(key, throttling.ThrottleSeries())
        the_bin = throttling.ThrottleBin(
            start=start, end=end, runs=counted, ratios=tuple(ratios), throttled=throttled,
            slow_probes=tuple(sorted(slow_probes)), mechanisms=dict(mechanisms),
            generalized=generalized, probes=tuple(sorted(counted_probes)))
        signal = throttling.step(series, the_bin, cc, asn, target, active.get((cc, asn), 0),
                                 config, self.config.tiers)
        if not series.holds():
            self._forget_if_idle(self.throttles, key, None, signal)
        return [signal]

    # -- heartbeat silence -----------------------------------------------------------------

    def _silence(self, now: float, active: dict[tuple[str, str], int]) -> list[Signal]:
        config = self.config.silence
        horizon = now - config.active_window
        firing = {p for g in self.groups.values() if g.onset is not None for p in g.probes}
        members: dict[str, list[silence.Member]] = defaultdict(list)
        silent_per_cc: Counter[str] = Counter()
        total_per_cc: Counter[str] = Counter()
        blind_until = self.blind_until if self.blind_until is not None else -math.inf
        minimum = config.heartbeat_interval + config.grace
        for probe_id, info in self.probes.items():
            live = info.live
            if live is None or info.cc is None or info.asn is None:
                continue
            if live.last_seen < horizon and probe_id not in firing:
                continue
            member = silence.Member(probe_id, info.asn, live)
            members[f"{info.cc}|{info.asn}"].append(member)
            members[f"{info.cc}|*"].append(member)
            total_per_cc[info.cc] += 1
            silent_per_cc[info.cc] += now - max(live.last_seen, blind_until) >= minimum
        if len(total_per_cc) >= 2 and all(
                silent_per_cc[cc] >= config.blind_share * n for cc, n in total_per_cc.items()):
            # Nearly every probe in every country went quiet at once: far likelier our own
            # uplink than simultaneous national shutdowns. Judge nothing until we hear again.
            self.blind_evaluations += 1
            return []
        signals = []
        for key in sorted(set(members) | {k for k, g in self.groups.items()
                                          if g.onset is not None}):
            group_members = members.get(key, [])
            finding = silence.evaluate_group(group_members, now, blind_until, config,
                                         self.config.tiers.floor)
            state = self.groups.setdefault(key, GroupState())
            signal = self._silence_signal(key, state, finding, group_members, now, active)
            if signal is not None:
                signals.append(signal)
            if state.onset is None and finding is None:
                self.groups.pop(key, None)
        return signals

    def _silence_signal(self, key: str, state: GroupState, finding: silence.Finding | None,
                        group_members: list[silence.Member], now: float,
                        active: dict[tuple[str, str], int]) -> Signal | None:
        cc, _, asn_text = key.partition("|")
        asn = None if asn_text == "*" else asn_text
        config = self.config.silence
        if finding is not None:
            probes, asns = list(finding.probes), list(finding.asns)
            if asn is None:
                probes, asns = self._country_members(finding, active, cc)
                if len(probes) < self.config.tiers.floor:
                    finding = None
        if finding is None:
            if state.onset is None:
                return None
            if state.not_firing_since is None:
                state.not_firing_since = now
            if now - state.not_firing_since < self.config.tiers.exit_bins * config.bin:
                return Signal(kind="shutdown", detector="silence", cc=cc, asn=asn, level=NONE,
                              target=None, at=now, asns=tuple(state.asns),
                              probes=tuple(state.probes))
            returns = [info.live.resumed_at for p in state.probes
                       if (info := self.probes.get(p)) and info.live
                       and info.live.resumed_at is not None
                       and state.onset <= info.live.resumed_at <= state.not_firing_since]
            recovered_at = max(returns) if returns else state.not_firing_since
            signal = Signal(kind="shutdown", detector="silence", cc=cc, asn=asn, level=NONE,
                            target=None, at=now, recovered_at=recovered_at,
                            asns=tuple(state.asns), probes=tuple(state.probes))
            self.groups[key] = GroupState()
            return signal
        size = len(group_members)
        level = LIKELY if finding.persisted and \
            len(probes) >= self.config.tiers.likely_probes(size) else SUSPECTED
        if state.onset is None:
            state.onset = finding.onset
        state.probes = sorted(set(state.probes) | set(probes))
        state.asns = sorted(set(state.asns) | set(asns))
        state.level = max(state.level, level)
        state.not_firing_since = None
        return Signal(kind="shutdown", detector="silence", cc=cc, asn=asn, level=level,
                      target=None, at=now, onset=state.onset, asns=tuple(state.asns),
                      probes=tuple(state.probes),
                      stats={"p_value": float(f"{finding.p_value:.3g}"),
                             "silent": len(finding.probes), "group": size,
                             "silent_for": round(finding.silent_for)})

    def _country_members(self, finding: silence.Finding, active: dict[tuple[str, str], int],
                         cc: str) -> tuple[list[str], list[str]]:
        """A country-level cluster names only the ASNs where at least half the probes are in
        it, so one stray silent probe elsewhere does not widen an ASN outage to two networks."""
        by_asn: dict[str, list[str]] = defaultdict(list)
        for probe_id in finding.probes:
            info = self.probes[probe_id]
            if info.asn:
                by_asn[info.asn].append(probe_id)
        probes: list[str] = []
        asns: list[str] = []
        for asn, ids in sorted(by_asn.items()):
            if len(ids) >= math.ceil(0.5 * max(1, active.get((cc, asn), len(ids)))):
                probes.extend(ids)
                asns.append(asn)
        return sorted(probes), asns

    # -- ladder ----------------------------------------------------------------------------

    def _backfill(self, now: float, context: Context, changed: set[str]) -> list[Event]:
        """Refine open shutdowns with the ladder: cause, and the first offline reading.

        Only events that changed or whose probes sent new readings are looked at again."""
        out = []
        silence_config = self.config.silence
        slack = max(self.config.block.bin + self.config.block.settle,
                    silence_config.heartbeat_interval + silence_config.grace)
        for event in list(self.tracker.events.values()):
            if event.kind != "shutdown":
                continue
            probes = sorted({p for m in event.members.values() for p in m.probes})
            if event.id not in changed and not self.new_readings.intersection(probes):
                continue
            onset = min(m.onset for m in event.members.values())
            readings = [LadderReading(p, event.cc, "", r[0], bool(r[1]), str(r[2]))
                        for p in probes if (info := self.probes.get(p))
                        for r in info.ladder]
            if not readings:
                continue
            until = event.end if event.end is not None else now
            summary = ladder.summarise_outage(readings, probes, onset, until,
                                              silence_config.backfill)
            extras: dict[str, Any] = {"cause": summary.cause, "causes": dict(summary.causes)}
            start = None
            if summary.start is not None and summary.start <= onset + slack:
                start = summary.start
                extras["start_source"] = "ladder"
            amended = self.tracker.amend(event.id, start, extras, now, context)
            if amended is not None:
                out.append(amended)
        return out

    # -- persistence -----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "shapes": state_shapes.shapes(self.config),
            "probes": {p: [i.cc, i.asn, None if i.live is None else i.live.to_state(),
                           i.last_observation, i.ladder] for p, i in self.probes.items()},
            "pending": {str(k): {
                "runs": [_run_to_list(r) for rs in v["runs"].values() for r in rs],
                "probes": {p: [b.cc, b.asn, sorted(b.ok), b.tried, b.failed, b.ladder_offline]
                           for p, b in v["probes"].items()}} for k, v in self.pending.items()},
            "last_settled": self.last_settled,
            "settled": self.settled,
            "prev_ok": self.prev_ok,
            "blocks": {k: s.to_state() for k, s in self.blocks.items()},
            "throttles": {k: s.to_state() for k, s in self.throttles.items()},
            "collapses": {k: s.to_state() for k, s in self.collapses.items()},
            "slowdowns": {k: s.to_state() for k, s in self.slowdowns.items()},
            "target_baselines": {k: b.to_state() for k, b in self.target_baselines.items()},
            "probe_baselines": {k: b.to_state() for k, b in self.probe_baselines.items()},
            "groups": {k: [g.onset, g.probes, g.asns, g.level, g.not_firing_since]
                       for k, g in self.groups.items()},
            "blind_until": self.blind_until,
            "late": self.late,
            "blind_evaluations": self.blind_evaluations,
            "tracker": self.tracker.to_state(),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any], config: DetectionConfig,
                   calendar: Calendar | None = None) -> Engine:
        """Resume from ``to_state``'s data. Parts saved under other parameters or another code
        version are converted or reset (``state_shapes``); ``state_changes`` says which, for
        the caller to log and count."""
        if data.get("version") not in (1, STATE_VERSION):
            raise ValueError("unknown detection state version")
        engine = cls(config, calendar)
        changes = state_shapes.compare(data.get("shapes"), config)
        engine.state_changes = changes
        reset = {c.detector for c in changes if c.action == "reset"}
        for probe_id, (cc, asn, live, last_observation, readings) in data["probes"].items():
            engine.probes[probe_id] = ProbeInfo(
                cc=cc, asn=asn, live=None if live is None else silence.Liveness.from_state(live),
                last_observation=last_observation, ladder=[list(r) for r in readings])
        if "bins" not in reset:
            for index, pending in data["pending"].items():
                runs: dict[tuple[str, str], list[Run]] = {}
                for item in pending["runs"]:
                    run = _run_from_list(item)
                    runs.setdefault((run.asn, run.target), []).append(run)
                probes = {p: ProbeBin(cc, asn, set(ok), tried, failed, offline)
                          for p, (cc, asn, ok, tried, failed, offline)
                          in pending["probes"].items()}
                engine.pending[int(index)] = {"runs": runs, "probes": probes}
            engine.last_settled = data["last_settled"]
            if "settled" in data:
                engine.settled = {k: int(v) for k, v in data["settled"].items()}
            else:
                engine.settled_default = engine.last_settled
            engine.prev_ok = dict(data["prev_ok"])
            for change in changes:
                if change.detector == "bins" and "bin" in change.old:
                    engine._rebin(float(change.old["bin"]))
        # Each part's series, restored unless its shape changed (then it starts empty).
        series: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
            ("block", "blocks", blocking.BlockSeries.from_state),
            ("throttle", "throttles", throttling.ThrottleSeries.from_state),
            ("collapse", "collapses", collapse.CollapseSeries.from_state),
            ("slowdown", "slowdowns", throttling.SlowdownSeries.from_state),
            ("baselines", "target_baselines", baseline.HourlyBaseline.from_state),
            ("baselines", "probe_baselines", baseline.HourlyBaseline.from_state),
        )
        for part, name, restore in series:
            if part not in reset:
                setattr(engine, name, {k: restore(v) for k, v in data[name].items()})
        if "silence" not in reset:
            engine.groups = {k: GroupState(onset, list(probes), list(asns), level, since)
                             for k, (onset, probes, asns, level, since)
                             in data["groups"].items()}
        engine.blind_until = data["blind_until"]
        engine.late = data["late"]
        engine.blind_evaluations = data["blind_evaluations"]
        engine.tracker.load_state(data["tracker"])
        return engine

    def _rebin(self, old_bin: float) -> None:
        """Pending bins saved at ``old_bin`` wide, gathered again at the configured width.

        What was settled stays settled, up to the end of the last settled old bin; a new bin
        straddling that end is judged on its later part only. Ladder offline flags are taken
        again from the probes' kept readings."""
        width = self.config.block.bin
        old = self.pending
        self.pending = {}
        settled_until = None

        def converted(index: int) -> int:
            # The new bin holding the end of old bin ``index`` is judged again (on its later
            # part only); the one before it is settled.
            return math.floor((index + 1) * old_bin / width) - 1

        if self.last_settled is not None:
            settled_until = (self.last_settled + 1) * old_bin
            self.last_settled = converted(self.last_settled)
        self.settled = {network: converted(index) for network, index in self.settled.items()}
        if self.settled_default is not None:
            self.settled_default = converted(self.settled_default)
        runs = sorted((r for bin_ in old.values() for rs in bin_["runs"].values() for r in rs),
                      key=lambda r: (r.t, r.probe_id))
        for run in runs:
            self.add(run)
        oldest = min(old) * old_bin if old else None
        for probe_id, info in self.probes.items():
            for t, online, _cause in info.ladder:
                if online or oldest is None or t < oldest or \
                        (settled_until is not None and t < settled_until):
                    continue
                if info.cc is None or info.asn is None:
                    continue
                index = math.floor(t / width)
                pending = self.pending.setdefault(index, {"runs": {}, "probes": {}})
                probe_bin = pending["probes"].setdefault(probe_id, ProbeBin(info.cc, info.asn))
                probe_bin.ladder_offline = True


def feed(engine: Engine, observations: Iterable[Run | LadderReading]) -> None:
    """Add many observations (a convenience for tests and the bench)."""
    for observation in observations:
        engine.add(observation)
