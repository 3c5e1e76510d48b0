"""Heartbeat silence against each probe's own history, on synthetic contact tables."""

from __future__ import annotations

import pytest

from collector.detect.params import SilenceParams
from collector.detect.silence import (
    Liveness,
    Member,
    evaluate_group,
    record_contact,
    silent_share,
)

P = SilenceParams()
DAY = 86400.0
T0 = 1_700_000_000.0


def steady(until: float, every: float = 60.0, since: float = T0 - 7 * DAY,
           gaps: tuple[tuple[float, float], ...] = ()) -> Liveness:
    """A probe heard every ``every`` seconds from ``since`` to ``until``, minus ``gaps``."""
    live = Liveness(first_seen=since, last_seen=since)
    t = since
    while t + every <= until:
        t += every
        if not any(a <= t < b for a, b in gaps):
            record_contact(live, t, P)
    record_contact(live, until, P)
    return live


def test_silent_share_is_the_time_share_of_long_gaps_plus_the_prior() -> None:
    live = steady(T0, gaps=((T0 - DAY, T0 - DAY + 600),))
    # One gap of 660 s (last contact before it to first after it); a silence of 70 s or more
    # lasted 590 s of it. Observed time is the 7-day history; the prior adds one day at 5%.
    gap = live.gaps[0][1]
    assert gap == pytest.approx(660.0)
    expected = (gap - 70.0 + DAY * 0.05) / (7 * DAY + DAY)
    assert silent_share(live, 70.0, T0, P) == pytest.approx(expected)
    assert silent_share(live, 1000.0, T0, P) == pytest.approx(0.05 / 8)


def test_gaps_not_counted_are_left_out_of_history_and_observed_time() -> None:
    live = steady(T0 - DAY)
    record_contact(live, T0 - DAY + 3600, P, counted=False)  # a known shutdown hour
    # Six days observed (the uncounted hour is not observation), plus the prior's day.
    assert silent_share(live, 70.0, T0 - DAY + 3600, P) == pytest.approx(0.05 / 7)


def members(n: int, now: float, silent_since: float = T0, count: int = 0,
            history_gaps: tuple[tuple[float, float], ...] = ()) -> list[Member]:
    """``n`` probes of one ASN; the first ``count`` last heard around ``silent_since``."""
    out = []
    for i in range(n):
        last = silent_since - 7 * i if i < count else now
        out.append(Member(f"AS1-{i}", "AS1", steady(last, gaps=history_gaps)))
    return out


def test_an_asn_going_dark_together_fires_after_one_missed_beat_and_persists() -> None:
    group = members(6, T0 + 200, count=6)  # heard last at T0, T0 - 7, ..., T0 - 35
    # A probe is silent once it missed a beat plus the grace: 70 s since its last contact.
    assert evaluate_group(group, T0 + 30, -1e18, P, floor=2) is None  # nobody yet
    assert evaluate_group(group, T0 + 40, -1e18, P, floor=2) is None  # one probe: the floor
    # Two of six at q = 0.05/8 each: P(X >= 2) = 5.7e-4, not below 1e-4 yet.
    assert evaluate_group(group, T0 + 44, -1e18, P, floor=2) is None
    three = evaluate_group(group, T0 + 50, -1e18, P, floor=2)
    assert three is not None and three.probes == ("AS1-3", "AS1-4", "AS1-5")
    assert three.p_value < P.alpha and not three.persisted
    finding = evaluate_group(group, T0 + 71, -1e18, P, floor=2)
    assert finding is not None and len(finding.probes) == 6 and not finding.persisted
    assert finding.onset == T0  # the last moment any of them was heard
    later = evaluate_group(group, T0 + 86, -1e18, P, floor=2)  # and 15 s earlier too
    assert later is not None and later.persisted


def test_a_single_silent_probe_never_fires() -> None:
    group = members(6, T0 + 3 * 3600, count=1)
    assert evaluate_group(group, T0 + 3 * 3600, -1e18, P, floor=2) is None


def test_silences_that_did_not_begin_together_are_not_a_cluster() -> None:
    group = members(4, T0 + 60)
    group[0] = Member("a", "AS1", steady(T0 - 3600))
    group[1] = Member("b", "AS1", steady(T0 - 1800))
    group[2] = Member("c", "AS1", steady(T0 - 600))
    assert evaluate_group(group, T0 + 60, -1e18, P, floor=2) is None


def test_flaky_probes_need_a_longer_silence_than_steady_ones() -> None:
    flaky = tuple((T0 - d * 7200, T0 - d * 7200 + 900) for d in range(1, 84))
    steady_group = members(3, T0, count=3)
    flaky_group = members(3, T0, count=3, history_gaps=flaky)
    assert evaluate_group(steady_group, T0 + 90, -1e18, P, floor=2) is not None
    assert evaluate_group(flaky_group, T0 + 90, -1e18, P, floor=2) is None
    late = evaluate_group(flaky_group, T0 + 1200, -1e18, P, floor=2)
    assert late is not None  # longer than any of their usual gaps


def test_silence_before_the_collector_listened_counts_from_then() -> None:
    group = members(5, T0, silent_since=T0 - 3600, count=5)
    blind_until = T0
    assert evaluate_group(group, T0 + 30, blind_until, P, floor=2) is None
    finding = evaluate_group(group, T0 + 120, blind_until, P, floor=2)
    assert finding is not None and finding.onset == blind_until


def test_liveness_round_trips() -> None:
    live = steady(T0, gaps=((T0 - 5000, T0 - 4000),))
    assert Liveness.from_state(live.to_state()) == live
