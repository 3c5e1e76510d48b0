"""The outside-in signal in the engine: alone it raises a shutdown, beside the probes' silence
it confirms one, and when the network answers from outside it says so on a silence event."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench.detection_eval import detection_config
from bench.fleet import HOUR, Fleet, Injection
from collector.detect.engine import Engine
from collector.detect.model import Event
from collector.detect.outside import Level, Verdict
from collector.outside.signal import GroupCount, GroupVerdict, SignalMaker
from tests.collector.detect.test_engine import BASE, START

ROUND = 600.0
NETWORK = "AS64501"


def run(outside: Callable[[float], Level], silent: bool) -> list[Event]:
    """A fleet where AS64501 goes dark for an hour from START (if ``silent``), with one
    outside-in statement for AS64501 every round as ``outside(t)`` says."""
    injections = (Injection("one_asn", "shutdown", (NETWORK,), (), START, START + HOUR),)
    spec = dataclasses.replace(BASE, injections=injections if silent else ())
    engine = Engine(detection_config(spec))
    maker = SignalMaker()
    final: dict[str, Event] = {}
    next_round = [spec.start - spec.warmup]

    def tick(now: float, changed: list[Event]) -> None:
        for event in changed:
            final[event.id] = event
        while next_round[0] <= now:
            at = next_round[0]
            level = outside(at)
            up = 10.0 if level is Level.CRITICAL else 40.0
            verdict = Verdict(level, current=up, baseline=40.0)
            group = GroupCount("KZ", NETWORK, up=int(up), down=40 - int(up))
            engine.add_outside(maker.signals([GroupVerdict(at=at, group=group, verdict=verdict)]))
            next_round[0] += ROUND

    Fleet(spec).run(engine, tick)
    return list(final.values())


def dark_during_injection(t: float) -> Level:
    return Level.CRITICAL if START + 300 <= t < START + HOUR else Level.NONE


def test_outside_in_alone_raises_a_likely_shutdown_of_that_network() -> None:
    [event] = run(dark_during_injection, silent=False)
    assert (event.kind, event.tier, event.asns) == ("shutdown", "likely", (NETWORK,))
    assert event.evidence["detectors"] == ["outside"]
    assert event.evidence["outside_in"] == "outside-in only"
    assert event.status == "closed"
    assert event.start == START + 600  # the first round that saw it


def test_outside_in_beside_the_probes_silence_confirms_the_shutdown() -> None:
    [event] = run(dark_during_injection, silent=True)
    assert event.tier == "confirmed"
    assert "outside" in event.evidence["detectors"] and len(event.evidence["detectors"]) >= 2
    assert event.evidence["outside_in"] == "agrees"


def test_a_probes_only_silence_says_the_network_answers_from_outside() -> None:
    events = run(lambda t: Level.NONE, silent=True)
    assert events
    for event in events:
        assert "outside" not in event.evidence["detectors"]
        assert event.evidence["outside_in"] == "probes silent, network reachable from outside"
        assert event.tier != "confirmed"


def test_without_outside_in_data_nothing_is_said_about_it() -> None:
    events = run(lambda t: Level.INSUFFICIENT, silent=True)
    assert events and all("outside_in" not in e.evidence for e in events)


def test_no_outside_in_statement_no_silence_no_event() -> None:
    assert run(lambda t: Level.NONE, silent=False) == []
