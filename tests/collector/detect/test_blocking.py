"""Block detection on synthetic rounds: onset, persistence, recovery, flapping, sparse probes,
chronic (broken) probes, fingerprints."""

from __future__ import annotations

from collector.detect.blocking import BlockRun, BlockSeries, step
from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import BlockParams, TierParams

P, TIERS = BlockParams(), TierParams()
CYCLE = 300.0
T0 = 1_700_000_000.0


def round_(series: BlockSeries, k: int, blocked: set[str], probes: list[str],
           mechanism: str = "tls:timeout", fingerprint: str | None = None,
           active: int | None = None) -> Signal:
    """Round ``k``: every probe measures the target once; those in ``blocked`` fail."""
    runs = [BlockRun(p, T0 + k * CYCLE + i, p in blocked, mechanism,
                     fingerprint if p in blocked else None) for i, p in enumerate(probes)]
    return step(series, runs, T0 + (k + 1) * CYCLE, "KZ", "AS9198", "https://x.example/",
                len(probes) if active is None else active, P, TIERS)


EIGHT = [f"p{i}" for i in range(8)]


def test_onset_is_likely_after_two_rounds_and_recovers_after_two_clean_rounds() -> None:
    series = BlockSeries()
    for k in range(3):
        assert round_(series, k, set(), EIGHT).level == NONE
    first = round_(series, 3, set(EIGHT), EIGHT)
    # One round: 8 of 8 blocked is a majority, but no probe has been blocked twice yet. The
    # episode began when a second probe saw it (p1, one second into the round).
    assert first.level == SUSPECTED and first.onset == T0 + 3 * CYCLE + 1
    second = round_(series, 4, set(EIGHT), EIGHT)
    assert second.level == LIKELY and second.onset == T0 + 3 * CYCLE + 1
    assert second.stats["persistent_probes"] == 8 and second.stats["wilson_lower"] >= 0.5
    assert (second.layer, second.mechanism) == ("tls", "timeout")
    still = round_(series, 5, set(EIGHT), EIGHT)
    assert still.level == LIKELY and still.stats["runs"] == 23  # p0's first run came earlier
    one_clean = round_(series, 6, set(), EIGHT)
    assert one_clean.recovered_at is None  # hysteresis: one clean round is not recovery
    two_clean = round_(series, 7, set(), EIGHT)
    assert two_clean.level == NONE and two_clean.recovered_at == T0 + 6 * CYCLE
    assert series.onset is None


def test_a_single_broken_probe_raises_nothing_and_becomes_chronic() -> None:
    series = BlockSeries()
    for k in range(20):
        signal = round_(series, k, {"p0"}, EIGHT)
        assert signal.level == NONE
    assert series.probes["p0"].chronic


def test_a_chronic_probe_neither_opens_nor_holds_an_episode() -> None:
    series = BlockSeries()
    for k in range(3):
        round_(series, k, {"p0"}, EIGHT)
    assert series.probes["p0"].chronic
    round_(series, 3, set(EIGHT), EIGHT)
    assert round_(series, 4, set(EIGHT), EIGHT).level == LIKELY
    round_(series, 5, {"p0"}, EIGHT)  # the censor stops; p0's own filter goes on
    # p0 is left out: the earliest clean run is p1's, one second into round 5.
    assert round_(series, 6, {"p0"}, EIGHT).recovered_at == T0 + 5 * CYCLE + 1


def test_flapping_never_becomes_likely() -> None:
    series = BlockSeries()
    levels = [round_(series, k, set(EIGHT) if k % 2 else set(), EIGHT).level
              for k in range(12)]
    assert LIKELY not in levels


def test_a_minority_of_blocked_probes_is_not_an_episode() -> None:
    series = BlockSeries()
    for k in range(6):
        assert round_(series, k, {"p0", "p1", "p2"}, EIGHT).level == NONE


def test_sparse_probes_small_asn_needs_two_probes_not_three() -> None:
    two = ["a", "b"]
    series = BlockSeries()
    round_(series, 0, set(two), two)
    signal = round_(series, 1, set(two), two)
    # Two probes of two, twice each: Wilson(4/4) = 0.51 and 50% of a small ASN's probes.
    assert signal.level == LIKELY
    lone = BlockSeries()
    for k in range(5):
        assert round_(lone, k, {"a"}, ["a"]).level < LIKELY  # one probe is never likely


def test_three_probes_of_many_are_likely_only_once_persistent() -> None:
    three = ["a", "b", "c"]
    series = BlockSeries()
    round_(series, 0, set(three), three, active=12)
    assert round_(series, 1, set(three), three, active=12).level == LIKELY


def test_fingerprint_of_a_known_blockpage_is_carried() -> None:
    series = BlockSeries()
    round_(series, 0, set(EIGHT), EIGHT, "http:blockpage", "blockpage:kz_blocked_by_court")
    signal = round_(series, 1, set(EIGHT), EIGHT, "http:blockpage",
                    "blockpage:kz_blocked_by_court")
    assert signal.fingerprint == "blockpage:kz_blocked_by_court"
    unknown = BlockSeries()
    round_(unknown, 0, set(EIGHT), EIGHT, "tls:mitm", "issuer:Some Corporate Proxy")
    assert round_(unknown, 1, set(EIGHT), EIGHT, "tls:mitm",
                  "issuer:Some Corporate Proxy").fingerprint is None


def test_one_stray_early_failure_does_not_move_the_onset() -> None:
    series = BlockSeries()
    round_(series, 0, set(), EIGHT)
    round_(series, 1, {"p5"}, EIGHT)  # a CDN hiccup one round before the censor starts
    round_(series, 2, set(EIGHT), EIGHT)
    signal = round_(series, 3, set(EIGHT), EIGHT)
    assert signal.level == LIKELY and signal.onset == T0 + 2 * CYCLE + 1


def test_state_round_trips() -> None:
    series = BlockSeries()
    round_(series, 0, {"p0"}, EIGHT)
    round_(series, 1, set(EIGHT), EIGHT)
    copy = BlockSeries.from_state(series.to_state())
    assert copy == series
    assert round_(copy, 2, set(EIGHT), EIGHT) == round_(series, 2, set(EIGHT), EIGHT)


def test_a_probe_that_breaks_during_an_episode_does_not_hold_it_open() -> None:
    four = ["a", "b", "c", "d"]
    series = BlockSeries()
    round_(series, 0, set(four), four)
    assert round_(series, 1, set(four), four).level == LIKELY
    round_(series, 2, {"d"}, four)
    signal = round_(series, 3, {"d"}, four)
    assert signal.recovered_at == T0 + 2 * CYCLE
    for k in range(4, 7):
        assert round_(series, k, {"d"}, four).level == NONE
    assert series.probes["d"].chronic
