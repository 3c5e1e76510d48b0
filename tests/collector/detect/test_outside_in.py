"""The outside-in detector through the engine: its own shutdowns, two signals that agree, and
the event text, on real contact histories and outside-in rounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from collector.detect.engine import Engine
from collector.detect.model import Event
from collector.detect.outside_in import OutsideDetector, OutsideReading
from collector.detect.params import DetectionConfig
from collector.events.statuspage import status_page
from collector.notify.decide import Transition
from collector.notify.event import EventView
from collector.notify.templates import render

T0 = 1_700_000_400.0  # a multiple of the round
ROUND = 600.0
CONFIG = DetectionConfig()
ASN, OTHER = "AS9198", "AS21299"


def run(engine: Engine, until: float, up: dict[str, list[tuple[float, int]]],
        probes: dict[str, tuple[str, float]], since: float = T0 - 6 * 3600) -> list[Event]:
    """Heartbeats every 60 s of each probe (its network, until its silence), outside-in rounds
    of 40 blocks per network (``up``: from a time on, that many up), evaluations every 30 s;
    returns every event update, in order."""
    for probe, (asn, _) in probes.items():
        engine.set_probe(probe, "KZ", asn)
    events: list[Event] = []
    t = since
    while t <= until:
        for probe, (_, silent_from) in probes.items():
            if t < silent_from and t % 60 == 0:
                engine.contact(probe, t)
        if t % ROUND == 0:
            for asn, changes in up.items():
                count = 40
                for start, value in changes:
                    count = value if t >= start else count
                engine.add(OutsideReading("KZ", asn, t, count, 40))
        if t % 30 == 0:
            events.extend(engine.evaluate(t))
        t += 30
    return events


def seen(asn: str, reachable: bool, up: int) -> dict[str, object]:
    return {"asn": asn, "reachable": reachable, "blocks_up": up, "blocks_total": 40,
            "blocks_usual": 40.0}


def latest(events: list[Event]) -> dict[str, Event]:
    return {e.id: e for e in events}


def test_a_network_dark_from_outside_with_no_probe_opens_a_shutdown_after_two_rounds() -> None:
    engine = Engine(CONFIG)
    after_one = run(engine, T0 + ROUND - 30, {ASN: [(T0, 4)]}, {})
    assert after_one == []  # one critical round is not enough
    events = run(engine, T0 + ROUND, {ASN: [(T0, 4)]}, {}, since=T0 + ROUND)
    [event] = latest(events).values()
    assert event.kind == "shutdown" and event.asns == (ASN,) and event.start == T0
    assert event.tier == "suspected"  # outside alone is never more
    assert event.evidence["outside"] == [seen(ASN, False, 4)]
    view = EventView.from_json(json.loads(json.dumps(event.to_json())))
    alert = render(Transition("opened", view), "ru", "https://k.example").text
    assert "видно только при проверке сетей из-за рубежа" in alert  # no probe claimed
    assert "отвечают 4 из 40 блоков адресов (обычно 40)" in alert
    # Back up: the member ends at the first round that is not critical.
    closed = latest(run(engine, T0 + 3 * ROUND, {ASN: [(T0, 4), (T0 + 2 * ROUND, 40)]}, {},
                        since=T0 + ROUND + 30))
    assert closed[event.id].status == "closed" and closed[event.id].end == T0 + 2 * ROUND


def test_outside_darkness_alone_stays_suspected_on_two_networks_and_quiet_rounds_open_nothing(
) -> None:
    engine = Engine(CONFIG)
    # A quiet stretch: single blocks lost here and there never reach half of the median.
    noise = {ASN: [(T0 - 3 * ROUND, 39), (T0 - 2 * ROUND, 40), (T0, 38)],
             OTHER: [(T0 - ROUND, 39), (T0, 40)]}
    assert run(engine, T0 + 2 * ROUND, noise, {}) == []
    dark = {ASN: [(T0 + 3 * ROUND, 0)], OTHER: [(T0 + 3 * ROUND, 0)]}
    [event] = latest(run(engine, T0 + 5 * ROUND, dark, {}, since=T0 + 2 * ROUND + 30)).values()
    assert event.asns == (OTHER, ASN) and event.tier == "suspected"


def test_probes_that_keep_talking_veto_the_outside_in_event() -> None:
    engine = Engine(CONFIG)
    probes = {f"p{i}": (ASN, float("inf")) for i in range(4)}
    assert run(engine, T0 + 3 * ROUND, {ASN: [(T0, 0)]}, probes) == []


def test_silent_probes_and_darkness_from_outside_make_a_confirmed_shutdown() -> None:
    engine = Engine(CONFIG)
    probes = {f"p{i}": (ASN, T0) for i in range(4)}
    events = run(engine, T0 + 2 * ROUND, {ASN: [(T0, 2)]}, probes)
    [event] = latest(events).values()
    assert event.tier == "confirmed" and event.asns == (ASN,)
    assert set(event.evidence["detectors"]) == {"outside", "silence"}
    assert event.evidence["outside"] == [seen(ASN, False, 2)]
    json.dumps(engine.to_state())
    # The alert and the status page carry the outside-in numbers.
    view = EventView.from_json(json.loads(json.dumps(event.to_json())))
    alert = render(Transition("opened", view), "en", "https://k.example").text
    assert "From outside: Kazakhtelecom (AS9198) does not answer from outside the country: 2 " \
        "of 40 address blocks respond (usually 40)." in alert
    now = datetime.fromtimestamp(T0 + 2 * ROUND, UTC)
    assert "2 of 40 address blocks respond" in status_page([view], [], now)


def test_silent_probes_on_a_network_reachable_from_outside_say_so() -> None:
    engine = Engine(CONFIG)
    probes = {f"p{i}": (ASN, T0) for i in range(4)}
    [event] = latest(run(engine, T0 + 2 * ROUND, {ASN: []}, probes)).values()
    assert event.tier == "likely"  # the probes' own rule; the outside does not vouch
    assert event.evidence["detectors"] == ["silence"]
    assert event.evidence["outside"] == [seen(ASN, True, 40)]


def test_probes_that_fall_silent_during_the_darkness_lift_their_veto() -> None:
    engine = Engine(CONFIG)
    probes = {f"p{i}": (ASN, T0 + ROUND + 300) for i in range(4)}
    assert run(engine, T0 + ROUND + 300, {ASN: [(T0, 0)]}, probes) == []
    events = run(engine, T0 + 2 * ROUND, {ASN: [(T0, 0)]}, probes, since=T0 + ROUND + 330)
    [event] = latest(events).values()
    assert "outside" in event.evidence["detectors"] and event.tier == "confirmed"


def test_a_history_learned_on_more_blocks_than_are_probed_now_starts_anew() -> None:
    # The detector's saved history from before the watch sets counted every block (3,000 up
    # of 3,000); the watched count (40 of 40) would be critical against it for ever (inpainted).
    engine = Engine(CONFIG)
    for n in range(12):
        engine.add(OutsideReading("KZ", ASN, T0 - (12 - n) * ROUND, 3000, 3000))
    detector = engine.detector("outside")
    assert isinstance(detector, OutsideDetector)
    engine.add(OutsideReading("KZ", ASN, T0, 40, 40))
    view = detector.networks[f"KZ|{ASN}"]
    assert view.history == [40.0] and view.level == "insufficient"
    # A cut keeps its blocks probed: the history stays and the cut is critical.
    for n in range(1, 7):
        engine.add(OutsideReading("KZ", ASN, T0 + n * ROUND, 40, 40))
    engine.add(OutsideReading("KZ", ASN, T0 + 7 * ROUND, 0, 40))
    assert view.level == "critical" and len(view.history) == 8
