"""The whole engine on small simulated fleets: exact events for injected incidents, nothing
for noise, a single broken probe raises nothing, and the state survives a restart."""

from __future__ import annotations

import dataclasses
import json

from bench.detection_eval import detection_config
from bench.fleet import EPOCH, HOUR, AsnSpec, Fleet, FleetSpec, Injection, Noise
from collector.detect.engine import Engine
from collector.detect.model import Event

ASNS = (AsnSpec("AS9198", 5, incumbent=True), AsnSpec("AS64501", 4),
        AsnSpec("AS64510", 4, mobile=True), AsnSpec("AS64511", 3, mobile=True))
ALL = tuple(a.asn for a in ASNS)
QUIET = Noise(heartbeat_miss=0.0, flaky_share=0.0, outages_per_day=0.0, churn_share=0.0,
              transient_timeout=0.0, transient_inconclusive=0.0, site_down_per_day=0.0,
              cdn_trouble_per_day=0.0, filtered_targets=0, broken_resolver_per_day=0.0)
BASE = FleetSpec(seed=5, asns=ASNS, targets=12, days=0.75, cycle=600.0, noise=QUIET)
START = EPOCH + 6 * HOUR


def run(spec: FleetSpec) -> tuple[dict[str, Event], Engine]:
    engine = Engine(detection_config(spec))
    final: dict[str, Event] = {}

    def keep(now: float, changed: list[Event]) -> None:
        for event in changed:
            final[event.id] = event

    Fleet(spec).run(engine, keep)
    return final, engine


def test_a_quiet_fleet_raises_nothing() -> None:
    events, _ = run(BASE)
    assert events == {}


def test_a_noisy_fleet_raises_nothing_likely() -> None:
    events, _ = run(dataclasses.replace(BASE, noise=Noise()))
    assert [e for e in events.values() if e.tier != "suspected"] == []


def test_a_single_broken_probe_raises_nothing() -> None:
    broken = dataclasses.replace(QUIET, filtered_targets=6, broken_resolver_per_day=8.0)
    events, _ = run(dataclasses.replace(BASE, noise=broken))
    assert events == {}


def test_a_national_block_of_many_targets_is_one_confirmed_event() -> None:
    targets = tuple(BASE.target_urls()[:8])
    block = Injection("national_block:tls_timeout", "block", ALL, targets, START,
                      START + 3 * HOUR, mechanism="tls_timeout")
    events, _ = run(dataclasses.replace(BASE, injections=(block,)))
    [event] = events.values()
    assert (event.kind, event.tier, event.status) == ("block", "confirmed", "closed")
    assert event.asns == tuple(sorted(ALL)) and event.targets == tuple(sorted(targets))
    assert event.mechanism == "timeout" and event.evidence["layer"] == "tls"
    assert event.evidence["scope"] == "national"
    assert event.probes == sum(a.probes for a in ASNS)
    assert START <= event.start <= START + BASE.cycle  # the first blocked run
    assert block.end <= event.end is not None and event.end <= block.end + BASE.cycle


def test_a_national_shutdown_is_one_event_with_its_cause_and_true_start() -> None:
    shutdown = Injection("national_shutdown", "shutdown", ALL, (), START, START + HOUR)
    events, _ = run(dataclasses.replace(BASE, injections=(shutdown,)))
    [event] = events.values()
    assert (event.kind, event.tier, event.status) == ("shutdown", "confirmed", "closed")
    assert event.asns == tuple(sorted(ALL)) and event.evidence["scope"] == "national"
    assert event.evidence["cause"] == "international_cut"
    assert event.evidence["start_source"] == "ladder"
    # The ladder's first offline reading is the probes' first round after the cut.
    assert START <= event.start <= START + BASE.cycle
    assert event.end is not None and abs(event.end - shutdown.end) <= 10 * 60


def test_a_mobile_only_shutdown_is_scoped_mobile() -> None:
    mobile = tuple(a.asn for a in ASNS if a.mobile)
    shutdown = Injection("mobile_shutdown", "shutdown", mobile, (), START, START + HOUR)
    events, _ = run(dataclasses.replace(BASE, injections=(shutdown,)))
    [event] = events.values()
    assert event.asns == tuple(sorted(mobile)) and event.evidence["scope"] == "mobile"


def test_targeted_throttling_and_a_generalized_slowdown_are_told_apart() -> None:
    target = BASE.target_urls()[3]
    sni = Injection("sni_throttle", "throttling", ("AS9198",), (target,), START,
                    START + 3 * HOUR, factor=15.0)
    slow = Injection("generalized_slowdown", "throttling", ("AS64501",), (), START + 4 * HOUR,
                     START + 7 * HOUR, factor=3.5)
    spec = dataclasses.replace(BASE, days=1.0, injections=(sni, slow))
    events, _ = run(spec)
    by_class = {e.evidence["class"]: e for e in events.values()}
    assert set(by_class) == {"targeted", "generalized"} and len(events) == 2
    targeted, generalized = by_class["targeted"], by_class["generalized"]
    assert targeted.targets == (target,) and targeted.asns == ("AS9198",)
    assert targeted.tier == "likely" and targeted.evidence["extreme"]
    assert generalized.asns == ("AS64501",) and generalized.targets == ()
    assert generalized.tier == "likely"


def test_state_survives_a_restart_mid_incident() -> None:
    block = Injection("asn_block:dns_nxdomain", "block", ("AS64501",),
                      tuple(BASE.target_urls()[:3]), START, START + 2 * HOUR,
                      mechanism="dns_nxdomain")
    spec = dataclasses.replace(BASE, injections=(block,))
    whole, _ = run(spec)
    engine = Engine(detection_config(spec))
    first: dict[str, Event] = {}
    fleet = Fleet(spec)
    fleet.run(engine, lambda now, changed: first.update({e.id: e for e in changed}),
                    until=START + HOUR)
    assert first and all(e.status == "open" for e in first.values())
    saved = json.loads(json.dumps(engine.to_state()))
    restored = Engine.from_state(saved, detection_config(spec))
    assert json.loads(json.dumps(restored.to_state())) == saved
    # The same world goes on, now fed to the restored engine.
    rest: dict[str, Event] = {}
    fleet.run(restored, lambda now, changed: rest.update({e.id: e for e in changed}))
    assert {**first, **rest} == whole


def test_runs_naming_another_country_than_their_probe_are_judged() -> None:
    # One probe's uploads can name two countries within a bin (it moved, or GeoIP placed an
    # upload elsewhere): every country of the bin's runs is looked up in the event calendar,
    # not only the countries of its probes, and the runs are judged like any other.
    from collector.detect.model import Run

    engine = Engine(detection_config(BASE))
    t0 = START
    probes = [f"roaming{i}" for i in range(4)]
    for minute in range(0, 120, 1):
        t = t0 + 60 * minute
        for probe in probes:
            for k, cc in enumerate(("KG", "KZ")):  # a target seen only from "KZ"
                engine.set_probe(probe, cc, "AS9198")
                engine.contact(probe, t)
                engine.add(Run(probe_id=probe, cc=cc, asn="AS9198",
                               target=f"https://t{k}.example/", t=t + k, outcome="ok",
                               handshake=0.05))
        if minute % 5 == 0:
            engine.evaluate(t + 1)
    assert engine.evaluate(t + 2) == []  # all ok: nothing to report, and no crash
