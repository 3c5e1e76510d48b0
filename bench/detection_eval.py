"""Measured evaluation of detection on seeded synthetic fleets with ground truth.

    python -m bench.detection_eval [--days 30] [--seeds 3] [--quick]

Two kinds of runs, both through the same engine the collector's pipeline drives:

* quiet: a whole fleet (5 ASNs, 40 probes, 60 targets) for ``--days`` days with all the noise of
  ``bench/fleet.py`` and nothing injected; every event is false, counted by the highest tier it
  reached;
* eventful: the same fleet with one incident every ten hours, drawn in turn from every kind
  (national, single-ASN and mobile-only shutdowns; national and single-ASN blocks by each
  mechanism; SNI throttling of one target; generalized slowdown of one ASN), one run per seed.

An event matches an incident when kind, country and an ASN agree (and a target, for blocks and
targeted throttling), and their times overlap. Reported per incident kind: recall at the
``likely`` tier (reached before the incident ended plus two probe cycles), the share detected
as exactly one event, the share with the right scope, and onset-to-alert latency at
``suspected`` and ``likely`` (median and worst, in minutes and in probe cycles). False events
are those of the eventful runs that match no incident, and all events of the quiet run.

Targets (issue 7): recall >= 95% for every kind; zero false ``likely`` in 30 quiet days;
shutdown alert within 2 minutes with 60 s heartbeats; block alert within 2 probe cycles.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.fleet import (
    DAY,
    DEFAULT_ASNS,
    EPOCH,
    HOUR,
    MECHANISMS,
    AsnSpec,
    Fleet,
    FleetSpec,
    Injection,
)
from collector.detect.engine import Engine
from collector.detect.model import TIER_LEVELS, Event
from collector.detect.params import BlockParams, DetectionConfig, NetworkRoles

LIKELY = TIER_LEVELS["likely"]
SUSPECTED = TIER_LEVELS["suspected"]


def detection_config(spec: FleetSpec) -> DetectionConfig:
    """The shipped defaults, with the fleet's network roles and bins at its probe cycle."""
    mobile = tuple(a.asn for a in spec.asns if a.mobile)
    incumbent = tuple(a.asn for a in spec.asns if a.incumbent)
    return DetectionConfig(
        networks={spec.cc: NetworkRoles(incumbent=incumbent, mobile=mobile)},
        block=dataclasses.replace(BlockParams(), bin=min(spec.cycle, 300.0)))


LABELS = (
    ["national_shutdown", "asn_shutdown", "mobile_shutdown"]
    + [f"national_block:{m}" for m in MECHANISMS]
    + [f"asn_block:{m}" for m in MECHANISMS]
    + ["sni_throttle", "generalized_slowdown"]
)


def schedule(seed: int, spec: FleetSpec, slot: float = 10 * HOUR,
             warmup: float = 3 * DAY) -> tuple[Injection, ...]:
    """One incident per ``slot`` after ``warmup``, cycling through every label."""
    rng = random.Random(seed * 7919)
    targets = spec.target_urls()
    asns = [a.asn for a in spec.asns]
    fixed = [a.asn for a in spec.asns if not a.mobile]
    mobile = tuple(a.asn for a in spec.asns if a.mobile)
    labels = list(LABELS)
    rng.shuffle(labels)
    out = []
    t = spec.start + warmup
    index = 0
    while t + slot <= spec.end:
        label = labels[index % len(labels)]
        index += 1
        start = t + rng.uniform(0, HOUR)
        if label.endswith("shutdown"):
            end = start + rng.uniform(20 * 60, 3 * HOUR)
            chosen = {"national_shutdown": tuple(asns), "mobile_shutdown": mobile,
                      "asn_shutdown": (rng.choice(fixed),)}[label]
            out.append(Injection(label, "shutdown", chosen, (), start, end))
        elif label.startswith(("national_block", "asn_block")):
            end = start + rng.uniform(2 * HOUR, 8 * HOUR)
            mechanism = label.split(":")[1]
            national = label.startswith("national")
            chosen = tuple(asns) if national else (rng.choice(asns),)
            blocked = tuple(rng.sample(targets, 10 if national else 3))
            out.append(Injection(label, "block", chosen, blocked, start, end,
                                 mechanism=mechanism))
        elif label == "sni_throttle":
            end = start + rng.uniform(3 * HOUR, 8 * HOUR)
            out.append(Injection(label, "throttling", (rng.choice(asns),),
                                 (rng.choice(targets),), start, end,
                                 factor=rng.uniform(8, 30)))
        else:
            end = start + rng.uniform(3 * HOUR, 8 * HOUR)
            out.append(Injection(label, "throttling", (rng.choice(asns),), (), start, end,
                                 factor=rng.uniform(2.5, 4)))
        t += slot
    return tuple(out)


@dataclass(slots=True)
class History:
    """What became of one event over the run."""

    last: Event
    first_at: dict[int, float] = field(default_factory=dict)  # tier level -> first time


def record(histories: dict[str, History], now: float, changed: Iterable[Event]) -> None:
    for event in changed:
        history = histories.get(event.id)
        if history is None:
            history = histories[event.id] = History(event)
        history.last = event
        level = TIER_LEVELS[event.tier]
        for lower in range(SUSPECTED, level + 1):
            history.first_at.setdefault(lower, now)


def matches(event: Event, injection: Injection, cc: str, slack: float) -> bool:
    if event.kind != injection.kind or event.cc != cc:
        return False
    if not set(event.asns) & set(injection.asns):
        return False
    if injection.kind == "block" and not set(event.targets) & set(injection.targets):
        return False
    if injection.kind == "throttling":
        generalized = event.evidence.get("class") == "generalized"
        if bool(injection.targets) == generalized:
            return False
        if injection.targets and not set(event.targets) & set(injection.targets):
            return False
    end = event.end if event.end is not None else float("inf")
    return event.start <= injection.end + slack and end >= injection.start - slack


def expected_scope(injection: Injection) -> str:
    if injection.label.startswith("national"):
        return "national"
    if injection.label.startswith("mobile"):
        return "mobile"
    return "asn"


@dataclass(slots=True)
class Outcome:
    injection: Injection
    detected: bool = False
    suspected_latency: float | None = None
    likely_latency: float | None = None
    events: int = 0
    scope_ok: bool = False


@dataclass(slots=True)
class RunResult:
    outcomes: list[Outcome]
    false_events: dict[str, list[Event]]  # max tier -> events
    seconds: float
    days: float
    late: int
    hits: dict[int, list[Event]] = field(default_factory=dict)


def run(spec: FleetSpec) -> RunResult:
    engine = Engine(detection_config(spec))
    histories: dict[str, History] = {}
    started = time.perf_counter()
    Fleet(spec).run(engine, lambda now, changed: record(histories, now, changed))
    seconds = time.perf_counter() - started
    slack = 2 * spec.cycle
    outcomes = []
    matched: set[str] = set()
    hits_by_label: dict[int, list[Event]] = {}
    for injection in spec.injections:
        outcome = Outcome(injection)
        hits = [h for h in histories.values() if matches(h.last, injection, spec.cc, slack)]
        matched.update(h.last.id for h in hits)
        outcome.events = len(hits)
        hits_by_label[id(outcome)] = [h.last for h in hits]
        deadline = injection.end + slack
        for level, attribute in ((SUSPECTED, "suspected_latency"), (LIKELY, "likely_latency")):
            times = [h.first_at[level] for h in hits if level in h.first_at
                     and h.first_at[level] <= deadline]
            if times:
                setattr(outcome, attribute, max(0.0, min(times) - injection.start))
        outcome.detected = outcome.likely_latency is not None
        outcome.scope_ok = any(h.last.evidence.get("scope") == expected_scope(injection)
                               for h in hits)
        outcomes.append(outcome)
    false_events: dict[str, list[Event]] = defaultdict(list)
    for history in histories.values():
        if history.last.id not in matched:
            false_events[history.last.tier].append(history.last)
    result = RunResult(outcomes, dict(false_events), seconds, spec.days, engine.late)
    result.hits = {id(o): hits_by_label[id(o)] for o in outcomes}
    return result


def _minutes(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) / 60:.1f} / {max(values) / 60:.1f}"


def _cycles(values: list[float], cycle: float) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) / cycle:.1f} / {max(values) / cycle:.1f}"


def report(results: list[RunResult], quiet: RunResult, spec: FleetSpec) -> str:
    by_label: dict[str, list[Outcome]] = defaultdict(list)
    for result in results:
        for outcome in result.outcomes:
            by_label[outcome.injection.label].append(outcome)
    lines = [
        f"Fleet: {sum(a.probes for a in spec.asns)} probes on {len(spec.asns)} ASNs, "
        f"{spec.targets} targets, heartbeats every {spec.heartbeat:.0f} s, targets every "
        f"{spec.cycle / 60:.0f} min (bins of 5 min), pipeline every "
        f"{spec.tick:.0f} s.",
        "",
        "| incident kind | n | recall (likely) | one event | scope right | "
        "latency suspected, min (median / max) | latency likely, min | likely, probe cycles |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in LABELS:
        outcomes = by_label.get(label, [])
        if not outcomes:
            continue
        n = len(outcomes)
        detected = sum(o.detected for o in outcomes)
        single = sum(o.events == 1 for o in outcomes)
        scope = sum(o.scope_ok for o in outcomes)
        suspected = [o.suspected_latency for o in outcomes if o.suspected_latency is not None]
        likely = [o.likely_latency for o in outcomes if o.likely_latency is not None]
        lines.append(
            f"| {label} | {n} | {100 * detected / n:.0f}% | {100 * single / n:.0f}% | "
            f"{100 * scope / n:.0f}% | {_minutes(suspected)} | {_minutes(likely)} | "
            f"{_cycles(likely, spec.cycle)} |")
    eventful_days = sum(r.days for r in results)
    lines += ["", "| false events | quiet run | eventful runs |", "|---|---|---|"]
    for tier in ("suspected", "likely", "confirmed"):
        eventful = sum(len(r.false_events.get(tier, [])) for r in results)
        lines.append(f"| {tier} (highest tier reached) | {len(quiet.false_events.get(tier, []))}"
                     f" in {quiet.days:.0f} days | {eventful} in {eventful_days:.0f} days |")
    lines += ["", f"Simulated {quiet.days + eventful_days:.0f} fleet-days in "
              f"{quiet.seconds + sum(r.seconds for r in results):.0f} s of CPU time."]
    return "\n".join(lines)


def describe_false(result: RunResult) -> list[str]:
    out = []
    for tier in ("likely", "confirmed", "suspected"):
        for event in result.false_events.get(tier, [])[:10]:
            out.append(f"  {tier}: {event.kind} {event.asns} {event.targets[:3]} "
                       f"{event.mechanism} start={event.start:.0f} scope="
                       f"{event.evidence.get('scope')} detectors={event.evidence.get('detectors')}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detection_eval")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cycle", type=float, default=900.0, help="target cadence, seconds")
    parser.add_argument("--quick", action="store_true", help="2 small runs, for a smoke test")
    parser.add_argument("--verbose", action="store_true", help="list false events")
    args = parser.parse_args(argv)
    days, seeds, asns = args.days, args.seeds, DEFAULT_ASNS
    if args.quick:
        days, seeds = 6.0, 1
        asns = tuple(AsnSpec(a.asn, max(3, a.probes // 2), a.mobile, a.incumbent)
                     for a in DEFAULT_ASNS)
    base = FleetSpec(seed=0, asns=asns, days=days, cycle=args.cycle,
                     targets=30 if args.quick else 60, start=EPOCH)
    quiet = run(dataclasses.replace(base, seed=1000))
    print(f"quiet run: {quiet.seconds:.0f} s", file=sys.stderr)
    results = []
    for seed in range(1, seeds + 1):
        spec = dataclasses.replace(base, seed=seed)
        spec = dataclasses.replace(spec, injections=schedule(seed, spec))
        results.append(run(spec))
        print(f"eventful run {seed}: {results[-1].seconds:.0f} s", file=sys.stderr)
    print(report(results, quiet, base))
    if args.verbose:
        print("\nFalse events, quiet run:")
        print("\n".join(describe_false(quiet)))
        for result in results:
            print("False events, eventful run:")
            print("\n".join(describe_false(result)))
            for outcome in result.outcomes:
                if not outcome.detected or outcome.events != 1 or not outcome.scope_ok:
                    i = outcome.injection
                    print(f"  missed/split: {i.label} {i.asns} start={i.start:.0f} "
                          f"dur={(i.end - i.start) / 60:.0f}min events={outcome.events} "
                          f"detected={outcome.detected} scope_ok={outcome.scope_ok}")
                    for event in result.hits.get(id(outcome), []):
                        print(f"      event {event.id} {event.tier} {event.asns} "
                              f"start={event.start:.0f} end={event.end} "
                              f"{event.evidence.get('detectors')} {event.evidence.get('scope')}"
                              f" targets={len(event.targets)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
