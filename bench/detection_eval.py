"""Measured evaluation of detection on seeded synthetic fleets with ground truth.

    python -m bench.detection_eval [--days 30] [--seeds 3] [--quick]
    python -m bench.detection_eval --variants [--variant-days 4] [--variant-seeds 2]

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

``--variants`` runs smaller fleets (20 probes, 30 targets) at other cadences, all judged in
the shipped 5-minute bins: the quickstart's 5 minutes +-20% and 2 minutes +-20% (a probe
measures a target more than once per bin), and an event window (15 minutes, divided by 4 for
a day, incidents inside the window), each with a quiet run and eventful runs, one row each.

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


def detection_config(spec: FleetSpec, bin_width: float | None = None) -> DetectionConfig:
    """The shipped defaults, with the fleet's network roles and bins of ``bin_width`` (by
    default the shipped 5 minutes, or the probe cycle when that is shorter)."""
    mobile = tuple(a.asn for a in spec.asns if a.mobile)
    incumbent = tuple(a.asn for a in spec.asns if a.incumbent)
    width = bin_width if bin_width is not None else min(spec.cycle, 300.0)
    return DetectionConfig(
        networks={spec.cc: NetworkRoles(incumbent=incumbent, mobile=mobile)},
        block=dataclasses.replace(BlockParams(), bin=width))


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


def run(spec: FleetSpec, bin_width: float | None = None) -> RunResult:
    engine = Engine(detection_config(spec, bin_width))
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


@dataclass(frozen=True, slots=True)
class Variant:
    """A fleet measuring at another cadence than the standard one, judged in 5-minute bins."""

    name: str
    cycle: float
    jitter: float = 0.2
    window_days: float | None = None  # (start + warm-up, + this): cadence / 4 (event window)


# Cadences shorter than the bin (the quickstart's 5 min +-20%, and 2 minutes), and an event
# window: the standard 15 minutes, divided by 4 for a day, with the incidents inside it.
VARIANTS = (
    Variant("every 5 min +-20% (quickstart)", 300.0),
    Variant("every 2 min +-20%", 120.0),
    Variant("event window: 15 min, 3.75 min for a day", 900.0, jitter=0.0, window_days=1.0),
)


def run_variant(variant: Variant, base: FleetSpec, seeds: int, days: float,
                ) -> tuple[list[RunResult], RunResult, FleetSpec]:
    """A quiet run and ``seeds`` eventful runs of ``days`` (after one day of warm-up, in
    which incidents are not injected) at the variant's cadence, in 5-minute bins."""
    spec = dataclasses.replace(base, cycle=variant.cycle, jitter=variant.jitter, days=days)
    schedule_days = days - 1
    if variant.window_days is not None:
        window_start = spec.start + DAY
        spec = dataclasses.replace(spec, window=(window_start,
                                                 window_start + variant.window_days * DAY),
                                   days=1 + variant.window_days)
        schedule_days = variant.window_days
    quiet = run(dataclasses.replace(spec, seed=2000), bin_width=300.0)
    results = []
    for seed in range(1, seeds + 1):
        seeded = dataclasses.replace(spec, seed=seed)
        seeded = dataclasses.replace(seeded, injections=schedule(
            seed, seeded, warmup=seeded.days * DAY - schedule_days * DAY))
        results.append(run(seeded, bin_width=300.0))
    return results, quiet, spec


def variant_row(variant: Variant, results: list[RunResult], quiet: RunResult,
                spec: FleetSpec) -> str:
    outcomes = [o for r in results for o in r.outcomes]
    n = len(outcomes)
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.injection.kind].append(outcome)
    recall = ", ".join(f"{kind} {sum(o.detected for o in items)}/{len(items)}"
                       for kind, items in sorted(by_kind.items()))
    single = sum(o.events == 1 for o in outcomes)
    scope = sum(o.scope_ok for o in outcomes)
    blocks = [o.likely_latency for o in by_kind.get("block", [])
              if o.likely_latency is not None]
    false_quiet = sum(len(quiet.false_events.get(t, [])) for t in ("likely", "confirmed"))
    false_eventful = sum(len(r.false_events.get(t, [])) for r in results
                         for t in ("likely", "confirmed"))
    eventful_days = sum(r.days for r in results)
    seconds = quiet.seconds + sum(r.seconds for r in results)
    return (f"| {variant.name} | {n} | {recall} | {100 * single / max(1, n):.0f}% | "
            f"{100 * scope / max(1, n):.0f}% | {_minutes(blocks)} | "
            f"{false_quiet} in {quiet.days:.0f} d / {false_eventful} in {eventful_days:.0f} d | "
            f"{seconds:.0f} s |")


def variants_report(rows: list[str], spec: FleetSpec) -> str:
    return "\n".join([
        f"Fleets at other cadences ({sum(a.probes for a in spec.asns)} probes on "
        f"{len(spec.asns)} ASNs, {spec.targets} targets, bins of 5 min):",
        "",
        "| fleet | n | recall (likely) by kind | one event | scope right | "
        "block latency likely, min (median / max) | false likely+ (quiet / eventful) | "
        "run time |",
        "|---|---|---|---|---|---|---|---|",
        *rows])


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
    parser.add_argument("--variants", action="store_true",
                        help="only the fleets at other cadences (smaller fleets, see VARIANTS)")
    parser.add_argument("--variant-days", type=float, default=4.0,
                        help="days of each variant run (the first is warm-up)")
    parser.add_argument("--variant-seeds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.variants:
        small = FleetSpec(seed=0, targets=30, start=EPOCH, asns=tuple(
            AsnSpec(a.asn, max(3, a.probes // 2), a.mobile, a.incumbent)
            for a in DEFAULT_ASNS))
        rows = []
        for variant in VARIANTS:
            results, quiet, spec = run_variant(variant, small, args.variant_seeds,
                                               args.variant_days)
            rows.append(variant_row(variant, results, quiet, spec))
            print(f"{variant.name}: {rows[-1]}", file=sys.stderr)
            if args.verbose:
                print("\n".join(describe_false(quiet)), file=sys.stderr)
                for result in results:
                    print("\n".join(describe_false(result)), file=sys.stderr)
        print(variants_report(rows, small))
        return 0
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
