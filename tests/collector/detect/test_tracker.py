"""From signals to events: one national block is one event; tiers; hysteresis; ids; scope."""

from __future__ import annotations

import json

from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import DetectionConfig, NetworkRoles
from collector.detect.tracker import Context, Tracker

T0 = 1_700_000_000.0
ASNS = ("AS9198", "AS64501", "AS64510", "AS64511", "AS64512")
CONFIG = DetectionConfig(networks={"KZ": NetworkRoles(incumbent=("AS9198",),
                                                      mobile=("AS64510", "AS64511"))})
CONTEXT = Context(roles=CONFIG.networks, active_asns={"KZ": 5}, windows={})


def block(asn: str, target: str, level: int, at: float, onset: float = T0,
          mechanism: str = "timeout", layer: str = "tls", recovered_at: float | None = None,
          fingerprint: str | None = None) -> Signal:
    return Signal(kind="block", detector="block", cc="KZ", asn=asn, target=target,
                  level=level, at=at, onset=onset if level else None,
                  recovered_at=recovered_at, asns=(asn,), probes=(f"{asn}-p1", f"{asn}-p2"),
                  mechanism=mechanism, layer=layer, fingerprint=fingerprint)


def test_a_national_block_of_40_domains_on_5_asns_is_one_event_updated_in_place() -> None:
    tracker = Tracker(CONFIG)
    targets = [f"https://news{i}.example/" for i in range(40)]
    seen: dict[str, list[str]] = {}
    for step, level in enumerate((SUSPECTED, LIKELY)):
        signals = [block(asn, target, level, T0 + 300 * (step + 1), onset=T0 + 60 * (i % 7))
                   for i, (asn, target) in enumerate((a, t) for a in ASNS for t in targets)]
        for event in tracker.apply(signals, T0 + 300 * (step + 1), CONTEXT):
            seen.setdefault(event.id, []).append(event.tier)
    assert len(seen) == 1
    [(event_id, tiers)] = seen.items()
    assert tiers == ["suspected", "confirmed"]  # likely on 5 ASNs at once is confirmed
    [event] = [tracker.to_event(e, CONTEXT) for e in tracker.events.values()]
    assert event.id == event_id and event.start == T0
    assert event.asns == tuple(sorted(ASNS)) and len(event.targets) == 40
    assert event.mechanism == "timeout" and event.evidence["layer"] == "tls"
    assert event.evidence["scope"] == "national" and event.probes == 10
    assert event.evidence["members_total"] == 200


def test_different_mechanisms_or_distant_onsets_are_different_events() -> None:
    tracker = Tracker(CONFIG)
    signals = [block("AS9198", "https://a.example/", SUSPECTED, T0),
               block("AS9198", "https://b.example/", SUSPECTED, T0, mechanism="nxdomain",
                     layer="dns"),
               block("AS9198", "https://c.example/", SUSPECTED, T0 + 3 * 3600,
                     onset=T0 + 3 * 3600)]
    events = tracker.apply(signals, T0 + 3 * 3600, CONTEXT)
    assert len(events) == 3


def test_the_same_target_on_another_asn_joins_within_six_hours() -> None:
    tracker = Tracker(CONFIG)
    tracker.apply([block("AS9198", "https://a.example/", LIKELY, T0)], T0, CONTEXT)
    later = T0 + 5 * 3600
    [event] = tracker.apply([block("AS64501", "https://a.example/", LIKELY, later,
                                   onset=later)], later, CONTEXT)
    assert event.asns == ("AS64501", "AS9198") and event.tier == "confirmed"


def test_fingerprint_confirms_a_likely_single_asn_block() -> None:
    tracker = Tracker(CONFIG)
    [event] = tracker.apply([block("AS64501", "https://a.example/", LIKELY, T0,
                                   mechanism="blockpage", layer="http",
                                   fingerprint="blockpage:kz_blocked_by_court")], T0, CONTEXT)
    assert event.tier == "confirmed" and event.evidence["scope"] == "asn"
    assert event.evidence["fingerprints"] == ["blockpage:kz_blocked_by_court"]


def test_tier_never_drops_and_the_event_closes_when_every_member_recovered() -> None:
    tracker = Tracker(CONFIG)
    a, b = "https://a.example/", "https://b.example/"
    tracker.apply([block("AS9198", a, LIKELY, T0), block("AS9198", b, SUSPECTED, T0)], T0,
                  CONTEXT)
    [event] = tracker.apply([block("AS9198", a, SUSPECTED, T0 + 300)], T0 + 300, CONTEXT)
    assert event.tier == "likely" and event.status == "open"
    [event] = tracker.apply([block("AS9198", a, NONE, T0 + 900, recovered_at=T0 + 600)],
                            T0 + 900, CONTEXT)
    assert event.status == "open"  # b has not recovered
    [event] = tracker.apply([block("AS9198", b, NONE, T0 + 1200, recovered_at=T0 + 700)],
                            T0 + 1200, CONTEXT)
    assert event.status == "closed" and event.end == T0 + 700 and event.tier == "likely"
    assert not tracker.events


def test_members_without_news_close_as_stale() -> None:
    tracker = Tracker(CONFIG)
    tracker.apply([block("AS9198", "https://a.example/", LIKELY, T0)], T0, CONTEXT)
    [event] = tracker.apply([], T0 + CONFIG.stale_after + 1, CONTEXT)
    assert event.status == "closed" and event.end == T0
    assert event.evidence["members"][0]["end_reason"] == "no_data"


def test_ids_are_deterministic_and_state_round_trips_through_json() -> None:
    signals = [block("AS9198", "https://a.example/", LIKELY, T0)]
    first, second = Tracker(CONFIG), Tracker(CONFIG)
    assert first.apply(signals, T0, CONTEXT)[0].id == second.apply(signals, T0, CONTEXT)[0].id
    copy = Tracker(CONFIG)
    copy.load_state(json.loads(json.dumps(first.to_state())))
    more = [block("AS64501", "https://a.example/", LIKELY, T0 + 300)]
    assert copy.apply(more, T0 + 300, CONTEXT) == first.apply(more, T0 + 300, CONTEXT)


def shutdown(asns: tuple[str, ...], level: int, at: float, onset: float,
             detector: str = "silence", recovered_at: float | None = None) -> Signal:
    return Signal(kind="shutdown", detector=detector, cc="KZ",
                  asn=asns[0] if len(asns) == 1 else None, target=None, level=level, at=at,
                  onset=onset if level else None, recovered_at=recovered_at, asns=asns,
                  probes=tuple(f"{a}-p{i}" for a in asns for i in range(3)))


def test_shutdown_scope_mobile_then_national_and_late_evidence_is_absorbed() -> None:
    tracker = Tracker(CONFIG)
    [mobile] = tracker.apply([shutdown(("AS64510", "AS64511"), LIKELY, T0, T0)], T0, CONTEXT)
    assert mobile.evidence["scope"] == "mobile" and mobile.tier == "confirmed"
    [grown] = tracker.apply([shutdown(("AS9198",), LIKELY, T0 + 600, T0 + 500)], T0 + 600,
                            CONTEXT)
    assert grown.id == mobile.id and grown.evidence["scope"] == "national"
    [closed] = tracker.apply(
        [shutdown(("AS64510", "AS64511"), NONE, T0 + 4000, T0, recovered_at=T0 + 3600),
         shutdown(("AS9198",), NONE, T0 + 4000, T0, recovered_at=T0 + 3600)],
        T0 + 4000, CONTEXT)
    assert closed.status == "closed" and closed.end == T0 + 3600
    # Ladder readings uploaded after the blackout make a collapse signal inside it: no event.
    late = shutdown(("AS9198",), SUSPECTED, T0 + 4300, T0 + 3300, detector="collapse")
    assert tracker.apply([late], T0 + 4300, CONTEXT) == []


def test_late_evidence_from_inside_a_closed_event_reopens_it() -> None:
    tracker = Tracker(CONFIG)
    target = "https://a.example/"
    [opened] = tracker.apply([block("AS9198", target, LIKELY, T0 + 300)], T0 + 300, CONTEXT)
    [closed] = tracker.apply([block("AS9198", target, NONE, T0 + 3600,
                                    recovered_at=T0 + 3000)], T0 + 3600, CONTEXT)
    assert closed.id == opened.id and closed.status == "closed" and closed.end == T0 + 3000
    # A probe's backlog, uploaded an hour later, shows the block on another network too,
    # during the event: the same event again, not a second one.
    late = block("AS64501", target, LIKELY, T0 + 1200, onset=T0 + 600)
    [again] = tracker.apply([late], T0 + 7200, CONTEXT)
    assert again.id == opened.id and again.status == "open"
    assert again.asns == ("AS64501", "AS9198") and again.evidence["members_total"] == 2
    [ended] = tracker.apply([block("AS64501", target, NONE, T0 + 7500, onset=T0 + 600,
                                   recovered_at=T0 + 2400)], T0 + 7500, CONTEXT)
    assert ended.id == opened.id and ended.status == "closed" and ended.end == T0 + 3000
    # Evidence about a later moment is a new incident: a new event.
    fresh = block("AS64501", target, LIKELY, T0 + 8000, onset=T0 + 7800)
    [new] = tracker.apply([fresh], T0 + 8000, CONTEXT)
    assert new.id != opened.id


def test_a_closed_event_is_reopened_only_within_its_window() -> None:
    tracker = Tracker(CONFIG)
    target = "https://a.example/"
    tracker.apply([block("AS9198", target, LIKELY, T0 + 300)], T0 + 300, CONTEXT)
    tracker.apply([block("AS9198", target, NONE, T0 + 3600, recovered_at=T0 + 3000)],
                  T0 + 3600, CONTEXT)
    much_later = T0 + 3000 + CONFIG.block.cluster_window + 600
    tracker.apply([], much_later, CONTEXT)
    assert tracker.closed == {}
    copy = Tracker(CONFIG)
    copy.load_state(json.loads(json.dumps(tracker.to_state())))
    assert copy.closed == {}
