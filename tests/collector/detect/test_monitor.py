"""The monitor's own outages: collector downtime from the alive stamps, the control lost by
every probe, and neither ever counted as a network's collapse."""

from __future__ import annotations

from collector.detect import monitor
from collector.detect.engine import Engine
from collector.detect.model import Run
from collector.detect.params import DetectionConfig

T0 = 1_700_000_100.0  # the start of a 300-second bin


def run(probe: str, asn: str, t: float, *, control_failed: bool, failed: bool = True,
        target: str = "https://a.example/") -> Run:
    return Run(probe_id=probe, cc="KG", asn=asn, target=target, t=t,
               outcome="inconclusive" if control_failed else "blocked", failed=failed,
               control_failed=control_failed)


def test_a_gap_in_the_alive_stamps_longer_than_the_grace_is_collector_downtime() -> None:
    assert monitor.collector_downtime(None, T0, 90.0) is None  # a first start
    assert monitor.collector_downtime(T0 - 60, T0, 90.0) is None  # a quick restart
    event = monitor.collector_downtime(T0 - 180, T0, 90.0)
    assert event is not None
    assert (event["kind"], event["mechanism"], event["status"], event["tier"], event["cc"]) == (
        "monitor_outage", "collector_down", "closed", "confirmed", "ZZ")
    assert event["evidence"]["down_seconds"] == 180
    assert event["start"] < event["end"]


def feed_bin(watch: monitor.ControlWatch, start: float, lost: dict[str, str],
             fine: dict[str, str]) -> None:
    for probe, asn in lost.items():
        for k in range(4):
            watch.add(run(probe, asn, start + k, control_failed=True))
    for probe, asn in fine.items():
        for k in range(4):
            watch.add(run(probe, asn, start + k, control_failed=False, failed=False))


def test_the_control_lost_by_every_probe_on_two_networks_is_an_outage_of_the_monitor() -> None:
    watch = monitor.ControlWatch(bin=300.0, settle=60.0)
    everyone = {"a": "AS1", "b": "AS1", "c": "AS2"}
    feed_bin(watch, T0, everyone, {})
    assert watch.evaluate(T0 + 300) == []  # not settled yet
    [opened] = watch.evaluate(T0 + 360)
    assert (opened["status"], opened["mechanism"], opened["probes"]) == (
        "open", "control_unreachable", 3)
    feed_bin(watch, T0 + 300, everyone, {})
    feed_bin(watch, T0 + 600, {}, everyone)
    events = watch.evaluate(T0 + 960)
    assert [(e["id"], e["status"]) for e in events] == [(opened["id"], "closed")]
    assert events[0]["end"] == monitor.outage_event("control_unreachable", T0 + 600,
                                                    T0 + 600, 0)["start"]


def test_one_network_losing_the_control_or_a_minority_is_not_the_monitor() -> None:
    one_network = monitor.ControlWatch(bin=300.0, settle=60.0)
    feed_bin(one_network, T0, {"a": "AS1", "b": "AS1", "c": "AS1"}, {})
    assert one_network.evaluate(T0 + 400) == []  # could be that network's cut: not said
    minority = monitor.ControlWatch(bin=300.0, settle=60.0)
    feed_bin(minority, T0, {"a": "AS1", "c": "AS2"}, {"d": "AS3", "e": "AS3", "f": "AS4"})
    assert minority.evaluate(T0 + 400) == []


def test_bins_inside_a_known_collector_downtime_are_not_told_twice() -> None:
    watch = monitor.ControlWatch(bin=300.0, settle=60.0)
    watch.cover(T0 - 10, T0 + 320)
    feed_bin(watch, T0, {"a": "AS1", "c": "AS2"}, {})
    assert watch.evaluate(T0 + 400) == []
    restored = monitor.ControlWatch(bin=300.0, settle=60.0)
    restored.load_state(watch.to_state())
    assert restored.to_state() == watch.to_state()


def test_failures_the_control_could_not_check_never_make_a_collapse() -> None:
    """Four probes of one network fail every target for two bins: a likely shutdown when the
    control saw the sites up, nothing at all when the control was unreachable."""
    def events(control_failed: bool) -> list[str]:
        engine = Engine(DetectionConfig())
        tiers = []
        for k in range(3):
            start = T0 + 300 * k
            for p in range(4):
                for i in range(6):
                    engine.add(run(f"p{p}", "AS8449", start + i, control_failed=control_failed,
                                   target=f"https://s{i}.example/"))
            tiers += [e.tier for e in engine.evaluate(start + 300 + 120)]
        return tiers

    assert "likely" in events(control_failed=False)
    assert events(control_failed=True) == []
