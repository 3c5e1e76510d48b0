"""The detection engine: observations in, the registered detectors run, events out.

Pure: no I/O, no wall clock, no logging. The caller (``collector/pipeline.py`` in production,
``bench/`` and the tests elsewhere) feeds it

* ``set_probe(probe, cc, asn)``: where a probe is (from its measurements);
* ``contact(probe, t)``: the collector heard from the probe at ``t`` (heartbeat or upload);
* ``add(observation)``: a ``Run`` or a ``LadderReading`` from ``extract``;

and calls ``evaluate(now)``, which settles the bins that are complete (``block.bin`` wide,
``block.settle`` after their end), hands each of them in time order to every detector of
``registry.DETECTORS`` (``Detector.judge_bin``, one shared ``SettledBin``), then asks every
detector about the fleet at ``now`` (``Detector.judge_time``: heartbeat silence), folds every
signal into the tracker and returns the events that changed. The engine knows no detector by
name: what a detector needs, it finds in the bin or fleet view, and it keeps and saves its
own series. ``to_state``/``from_state`` serialize everything as JSON-ready named fields, each
detector's part with its version, so the pipeline can persist it and resume.

Order of precedence, so that one incident is reported once: the registry's order (a network
whose probes collapsed in a bin contributes nothing to that bin's per-target series: a shutdown
is not 60 blocks; a bin where the whole network is slow is neutral for targeted throttling),
and new block or throttling members are not opened on an ASN inside an open shutdown.

Bins are settled per network: a network that went dark has no bins judged meanwhile, so its
probes' backlog, uploaded afterwards with the original timestamps, is judged in its own bins
(blocks that began in the dark, the ladder's offline readings) while the other networks went
on. One probe's backlog in a network whose bins were judged without it (its uploads waited
while the others reported) is judged in *partial* bins (``SettledBin.partial``): the block
detector takes its rounds, the network-wide detectors skip the network. An observation is late,
counted in ``late`` and dropped from the bin detectors, only when its probe's runs were already
judged in that bin or a later one, or when it is a ladder reading of a judged bin (ladder
readings are still kept: they backfill shutdown starts).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from collector.detect import ladder, state_shapes
from collector.detect.baseline import Baselines
from collector.detect.detector import Detector, FleetProbe, FleetView, ProbeBin, SettledBin
from collector.detect.model import Event, LadderReading, Run, Signal
from collector.detect.params import DetectionConfig
from collector.detect.registry import DETECTORS
from collector.detect.saved import integer, mapping, maybe_number, record, texts
from collector.detect.silence import Liveness, record_contact
from collector.detect.tracker import TIER_RULES, Context, Tracker
from collector.detect.windows import Calendar
from collector.events.kinds import SHUTDOWN

LADDER_KEEP = 2 * 86400.0  # ladder readings kept per probe for backfill
# 2: each part saved with its shape (``state_shapes``); 3: every part saves itself as named
# fields, the detectors under "detectors" (state version 2's positional lists still load).
STATE_VERSION = 3
PROBE_FIELDS = ("cc", "asn", "live", "last_observation", "ladder")
PROBE_BIN_FIELDS = ("cc", "asn", "ok", "tried", "failed", "ladder_offline")
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(Run))


@dataclass(slots=True)
class ProbeInfo:
    cc: str | None = None
    asn: str | None = None
    live: Liveness | None = None
    last_observation: float | None = None
    ladder: list[list[Any]] = field(default_factory=list)  # [t, online, cause]

    def last_activity(self) -> float | None:
        times = [t for t in (self.live.last_seen if self.live else None,
                             self.last_observation) if t is not None]
        return max(times) if times else None

    def to_state(self) -> dict[str, Any]:
        return {"cc": self.cc, "asn": self.asn,
                "live": None if self.live is None else self.live.to_state(),
                "last_observation": self.last_observation, "ladder": self.ladder}

    @classmethod
    def from_state(cls, data: object) -> ProbeInfo:
        d = record(data, PROBE_FIELDS)
        return cls(cc=d["cc"], asn=d["asn"],
                   live=None if d["live"] is None else Liveness.from_state(d["live"]),
                   last_observation=maybe_number(d["last_observation"]),
                   ladder=[list(r) for r in d["ladder"]])


def _probe_bin_to_state(b: ProbeBin) -> dict[str, Any]:
    return {"cc": b.cc, "asn": b.asn, "ok": sorted(b.ok), "tried": b.tried,
            "failed": b.failed, "ladder_offline": b.ladder_offline}


def _probe_bin_from_state(data: object) -> ProbeBin:
    d = record(data, PROBE_BIN_FIELDS)
    return ProbeBin(str(d["cc"]), str(d["asn"]), set(texts(d["ok"])), integer(d["tried"]),
                    integer(d["failed"]), bool(d["ladder_offline"]))


def _run_to_state(run: Run) -> dict[str, Any]:
    return {name: getattr(run, name) for name in RUN_FIELDS}


def _run_from_state(data: object) -> Run:
    if isinstance(data, list):  # state version 2: the leading fields, in order
        return Run(*data)
    return Run(**mapping(data))


class Engine:
    """All detection state. See the module docstring for the contract."""

    def __init__(self, config: DetectionConfig, calendar: Calendar | None = None,
                 detectors: Iterable[type[Detector]] = DETECTORS) -> None:
        self.config = config
        self.calendar = calendar or Calendar()
        self.detectors: tuple[Detector, ...] = tuple(d(config) for d in detectors)
        self.tracker = Tracker(config, (*[c for d in self.detectors
                                          for c in d.corroborations()], *TIER_RULES))
        self.probes: dict[str, ProbeInfo] = {}
        self.pending: dict[int, dict[str, Any]] = {}  # bin index -> {"runs": {...}, ...}
        self.last_settled: int | None = None
        self.settled: dict[str, int] = {}  # "cc|asn" -> the network's last judged bin
        self.settled_default: int | None = None  # for a state saved before per-network bins
        self.judged: dict[str, int] = {}  # probe -> the last bin judged with its runs in it
        self.prev_ok: dict[str, int] = {}
        self.baselines = Baselines()
        self.blind_until: float | None = None
        self.late = 0
        self.blind_evaluations = 0
        self.new_readings: set[str] = set()  # probes with ladder readings not yet backfilled
        self.state_changes: list[state_shapes.StateChange] = []  # made by from_state

    def detector(self, name: str) -> Detector:
        """The registered detector called ``name`` (KeyError if there is none)."""
        for detector in self.detectors:
            if detector.name == name:
                return detector
        raise KeyError(name)

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
            info.live = Liveness(first_seen=t, last_seen=t)
            return
        gap_start = info.live.last_seen
        counted = not (info.cc and (self.calendar.frozen(info.cc, gap_start)
                                    or self.calendar.frozen(info.cc, t)))
        if counted and t - gap_start > self.config.silence.heartbeat_interval:
            counted = probe_id not in self._silent_probes()
        record_contact(info.live, t, self.config.silence, counted)

    def _firing(self) -> set[str]:
        """Probes some detector holds as silent now."""
        return set().union(*(d.silent_probes() for d in self.detectors))

    def _silent_probes(self) -> set[str]:
        return self._firing() | self.tracker.open_probes(SHUTDOWN)

    def add(self, observation: object) -> None:
        """Take one observation: runs and ladder readings are binned here; any other kind goes
        to the detector that takes it (``Detector.observe``), or is refused (TypeError)."""
        if not isinstance(observation, Run | LadderReading):
            if not any(d.observe(observation) for d in self.detectors):
                raise TypeError(f"no detector takes {type(observation).__name__}")
            return
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
        network = f"{observation.cc}|{observation.asn}"
        done = self.settled.get(network, self.settled_default)
        partial = done is not None and index <= done
        if partial:
            # The network's bin was judged without this probe. Its runs after its own last
            # judged bin (a backlog it uploads late) are judged apart, in a partial bin; a run of
            # a bin that had its probe's runs already, and a ladder reading, come too late.
            judged = self.judged.get(observation.probe_id)
            if isinstance(observation, LadderReading) or (judged is not None
                                                          and index <= judged):
                self.late += 1
                return
        pending = self.pending.setdefault(index, {"runs": {}, "probes": {}})
        if partial:
            pending.setdefault("partial", set()).add(network)
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
        """Settle complete bins, judge the fleet at ``now``; returns the events that changed."""
        active, _ = self._active(now)
        asns_per_cc = dict(Counter(cc for cc, _ in active))
        signals: list[Signal] = []
        bin_width = self.config.block.bin
        for index in sorted(self.pending):
            if (index + 1) * bin_width + self.config.block.settle > now:
                break
            signals.extend(self._settle(index, active))
        fleet = self._fleet(now, active)
        if self._blind(fleet):
            # Nearly every probe in every country went quiet at once: far likelier our own
            # uplink than simultaneous national shutdowns. Judge nothing until we hear again.
            self.blind_evaluations += 1
        else:
            for detector in self.detectors:
                signals.extend(detector.judge_time(fleet))
        shutdown_asns = {cc: self.tracker.open_asns(SHUTDOWN, cc)
                         for cc in {s.cc for s in signals}}
        kept = [s for s in signals
                if s.kind == SHUTDOWN or self.tracker.is_open(s.key)
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
        for event in self._remark(now, context):
            changed[event.id] = event
        self.new_readings.clear()
        return [changed[k] for k in sorted(changed)]

    def open_events(self, now: float) -> list[Event]:
        _, per_cc = self._active(now)
        context = self._context(now, per_cc)
        return [self.tracker.to_event(e, context) for e in self.tracker.events.values()]

    # -- bins ------------------------------------------------------------------------------

    def _settle(self, index: int, active: dict[tuple[str, str], int]) -> list[Signal]:
        """Judge one complete bin: every detector of the registry, in order, on one view."""
        pending = self.pending.pop(index)
        in_order = self.last_settled is None or index > self.last_settled
        self.last_settled = index if in_order else self.last_settled
        config = self.config
        start = index * config.block.bin
        probe_bins: dict[str, ProbeBin] = pending["probes"]
        healthy = {p: not b.ladder_offline and
                   len(b.ok) + self.prev_ok.get(p, 0) >= config.block.health_min_ok
                   for p, b in probe_bins.items()}
        ok_now = {p: len(b.ok) for p, b in probe_bins.items()}
        # A dark network's backlog judged late only updates its own probes.
        self.prev_ok = ok_now if in_order else {**self.prev_ok, **ok_now}
        for probe_id, b in probe_bins.items():
            network = f"{b.cc}|{b.asn}"
            self.settled[network] = max(index, self.settled.get(network, index))
            self.judged[probe_id] = max(index, self.judged.get(probe_id, index))
        partial = {(n.partition("|")[0], n.partition("|")[2]) for n in pending.get("partial", ())}
        view = SettledBin(
            index=index, start=start, end=start + config.block.bin, probes=probe_bins,
            runs=pending["runs"], healthy=healthy,
            # Every country of the bin, its runs' too: a probe's runs can name another
            # country than its bin (it moved, or GeoIP placed one upload elsewhere).
            frozen={cc: self.calendar.frozen(cc, start) for cc in
                    {b.cc for b in probe_bins.values()}
                    | {r.cc for runs in pending["runs"].values() for r in runs}},
            active=active, baselines=self.baselines, is_open=self.tracker.is_open,
            partial=partial)
        signals: list[Signal] = []
        for detector in self.detectors:
            signals.extend(detector.judge_bin(view))
        return signals

    # -- the fleet at one moment -----------------------------------------------------------

    def _fleet(self, now: float, active: dict[tuple[str, str], int]) -> FleetView:
        probes = {p: FleetProbe(info.cc, info.asn, info.live) for p, info in self.probes.items()
                  if info.live is not None and info.cc is not None and info.asn is not None}
        blind_until = self.blind_until if self.blind_until is not None else -math.inf
        return FleetView(now=now, probes=probes, blind_until=blind_until, active=active,
                         is_open=self.tracker.is_open)

    def _blind(self, fleet: FleetView) -> bool:
        """Whether nearly every probe in every country (two at least) went quiet at once."""
        config = self.config.silence
        horizon = fleet.now - config.active_window
        firing = self._firing()
        minimum = config.heartbeat_interval + config.grace
        silent_per_cc: Counter[str] = Counter()
        total_per_cc: Counter[str] = Counter()
        for probe_id, probe in fleet.probes.items():
            if probe.live.last_seen < horizon and probe_id not in firing:
                continue
            total_per_cc[probe.cc] += 1
            silent_per_cc[probe.cc] += \
                fleet.now - max(probe.live.last_seen, fleet.blind_until) >= minimum
        return len(total_per_cc) >= 2 and all(
            silent_per_cc[cc] >= config.blind_share * n for cc, n in total_per_cc.items())

    def _remark(self, now: float, context: Context) -> list[Event]:
        """Open events whose facts from the detectors (``Detector.event_extras``) changed."""
        out = []
        for event in list(self.tracker.events.values()):
            asns = sorted({a for m in event.members.values() for a in m.asns})
            extras: dict[str, Any] = {}
            for detector in self.detectors:
                extras.update(detector.event_extras(event.kind, event.cc, asns, now))
            amended = self.tracker.amend(event.id, None, extras, now, context) if extras else None
            if amended is not None:
                out.append(amended)
        return out

    # -- ladder ----------------------------------------------------------------------------

    def _backfill(self, now: float, context: Context, changed: set[str]) -> list[Event]:
        """Refine open shutdowns with the ladder: cause, and the first offline reading.

        Only events that changed or whose probes sent new readings are looked at again."""
        out = []
        silence_config = self.config.silence
        slack = max(self.config.block.bin + self.config.block.settle,
                    silence_config.heartbeat_interval + silence_config.grace)
        for event in list(self.tracker.events.values()):
            if event.kind != SHUTDOWN:
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
            "probes": {p: i.to_state() for p, i in self.probes.items()},
            "pending": {str(k): {
                "runs": [_run_to_state(r) for rs in v["runs"].values() for r in rs],
                "probes": {p: _probe_bin_to_state(b) for p, b in v["probes"].items()},
                "partial": sorted(v.get("partial", ()))}
                for k, v in self.pending.items()},
            "last_settled": self.last_settled,
            "settled": self.settled,
            "judged": self.judged,
            "prev_ok": self.prev_ok,
            "baselines": self.baselines.to_state(),
            "detectors": {d.name: d.to_state() for d in self.detectors},
            "blind_until": self.blind_until,
            "late": self.late,
            "blind_evaluations": self.blind_evaluations,
            "tracker": self.tracker.to_state(),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any], config: DetectionConfig,
                   calendar: Calendar | None = None,
                   detectors: Iterable[type[Detector]] = DETECTORS) -> Engine:
        """Resume from ``to_state``'s data (or a state of version 1 or 2). Parts saved under
        other parameters or another code version are converted or reset (``state_shapes``);
        ``state_changes`` says which, for the caller to log and count."""
        version = data.get("version")
        if version not in (1, 2, STATE_VERSION):
            raise ValueError("unknown detection state version")
        engine = cls(config, calendar, detectors)
        changes = state_shapes.compare(data.get("shapes"), config)
        engine.state_changes = changes
        reset = {c.detector for c in changes if c.action == "reset"}
        engine.probes = {p: ProbeInfo.from_state(v) for p, v in data["probes"].items()}
        if "bins" not in reset:
            for index, pending in data["pending"].items():
                runs: dict[tuple[str, str], list[Run]] = {}
                for item in pending["runs"]:
                    run = _run_from_state(item)
                    runs.setdefault((run.asn, run.target), []).append(run)
                probes = {p: _probe_bin_from_state(b) for p, b in pending["probes"].items()}
                engine.pending[int(index)] = {"runs": runs, "probes": probes}
                if pending.get("partial"):
                    engine.pending[int(index)]["partial"] = set(texts(pending["partial"]))
            engine.last_settled = data["last_settled"]
            if "settled" in data:
                engine.settled = {k: int(v) for k, v in data["settled"].items()}
            else:
                engine.settled_default = engine.last_settled
            engine.prev_ok = dict(data["prev_ok"])
            engine.judged = {str(k): integer(v) for k, v in data.get("judged", {}).items()}
            for change in changes:
                if change.detector == "bins" and "bin" in change.old:
                    engine._rebin(float(change.old["bin"]))
        if "baselines" not in reset:
            engine.baselines = Baselines.from_state(
                data["baselines"] if version == STATE_VERSION else
                {"targets": data["target_baselines"], "probes": data["probe_baselines"]})
        saved = mapping(data["detectors"]) if version == STATE_VERSION else {}
        for detector in engine.detectors:
            # Each detector's series, restored unless its shape changed (then it starts empty).
            if detector.name in reset:
                continue
            if version == STATE_VERSION:
                part = saved.get(detector.name)
            elif detector.legacy_table is not None and detector.legacy_table in data:
                part = {"version": detector.state_version, "series": data[detector.legacy_table]}
            else:
                part = None
            if part is not None:
                detector.load_state(mapping(part))
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
        self.judged = {probe: converted(index) for probe, index in self.judged.items()}
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
