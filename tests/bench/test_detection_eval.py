"""The evaluation harness itself: its matching is right, and on a small seeded fleet with one
incident of every kind the detectors find each as exactly one event, in simulated time within
the issue's latency targets, with nothing false at ``likely`` or above. (Wall time is not
measured here; the bench prints it.)"""

from __future__ import annotations

import dataclasses

from bench import detection_eval
from bench.fleet import EPOCH, HOUR, AsnSpec, FleetSpec, Injection
from collector.detect.model import Event

ASNS = (AsnSpec("AS9198", 5, incumbent=True), AsnSpec("AS64501", 4),
        AsnSpec("AS64510", 4, mobile=True), AsnSpec("AS64511", 3, mobile=True))
ALL = tuple(a.asn for a in ASNS)
CYCLE = 900.0


def event(**changes: object) -> Event:
    base = Event(id="e", kind="block", tier="likely", status="closed", start=100.0, end=200.0,
                 updated_at=200.0, cc="KZ", asns=("AS1",), targets=("t1",), mechanism="reset",
                 probes=3, evidence={"scope": "asn"})
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_matching_needs_kind_country_asn_target_and_overlap() -> None:
    injection = Injection("asn_block:tcp_reset", "block", ("AS1",), ("t1",), 150.0, 300.0,
                          mechanism="tcp_reset")
    assert detection_eval.matches(event(), injection, "KZ", slack=0)
    assert not detection_eval.matches(event(kind="shutdown"), injection, "KZ", slack=0)
    assert not detection_eval.matches(event(cc="KG"), injection, "KZ", slack=0)
    assert not detection_eval.matches(event(asns=("AS2",)), injection, "KZ", slack=0)
    assert not detection_eval.matches(event(targets=("t2",)), injection, "KZ", slack=0)
    assert not detection_eval.matches(event(start=400.0, end=None), injection, "KZ", slack=0)
    generalized = Injection("generalized_slowdown", "throttling", ("AS1",), (), 150.0, 300.0)
    slow = event(kind="throttling", targets=(), evidence={"class": "generalized"})
    assert detection_eval.matches(slow, generalized, "KZ", slack=0)
    assert not detection_eval.matches(dataclasses.replace(slow, evidence={"class": "targeted"}),
                                      generalized, "KZ", slack=0)


def incidents(spec: FleetSpec) -> tuple[Injection, ...]:
    urls = spec.target_urls()
    start = spec.start + 6 * HOUR
    mobile = tuple(a.asn for a in ASNS if a.mobile)
    out = [
        Injection("national_shutdown", "shutdown", ALL, (), start, start + HOUR),
        Injection("asn_shutdown", "shutdown", ("AS64501",), (), start + 5 * HOUR,
                  start + 6 * HOUR),
        Injection("mobile_shutdown", "shutdown", mobile, (), start + 10 * HOUR,
                  start + 11 * HOUR),
        Injection("national_block:tls_timeout", "block", ALL, tuple(urls[:6]),
                  start + 14 * HOUR, start + 17 * HOUR, mechanism="tls_timeout"),
        Injection("asn_block:http_blockpage", "block", ("AS9198",), tuple(urls[6:8]),
                  start + 20 * HOUR, start + 23 * HOUR, mechanism="http_blockpage"),
        Injection("sni_throttle", "throttling", ("AS9198",), (urls[9],), start + 26 * HOUR,
                  start + 30 * HOUR, factor=15.0),
        Injection("generalized_slowdown", "throttling", ("AS64501",), (), start + 32 * HOUR,
                  start + 36 * HOUR, factor=3.5),
    ]
    return tuple(out)


def test_every_kind_is_found_once_in_time_and_nothing_false_is_likely() -> None:
    spec = FleetSpec(seed=11, asns=ASNS, targets=16, days=2.0, cycle=CYCLE, start=EPOCH,
                     warmup=3 * 86400.0)
    spec = dataclasses.replace(spec, injections=incidents(spec))
    result = detection_eval.run(spec)
    for outcome in result.outcomes:
        label = outcome.injection.label
        assert outcome.detected, label
        assert outcome.events == 1, label
        assert outcome.scope_ok, label
        assert outcome.likely_latency is not None
        if outcome.injection.kind == "shutdown":
            assert outcome.likely_latency <= 120, label  # issue 7: within 2 minutes
        if outcome.injection.kind == "block":
            # Two probe cycles, plus waiting for the bin to end and settle.
            bin_ = detection_eval.detection_config(spec).block
            assert outcome.likely_latency <= 2 * CYCLE + bin_.bin + bin_.settle, label
    assert not result.false_events.get("likely") and not result.false_events.get("confirmed")
    table = detection_eval.report([result], result, spec)
    assert "| national_shutdown | 1 | 100% | 100% | 100% |" in table
