"""Byte-time curves: what a transfer's cumulative byte counts say about its speed.

Pure functions, no I/O and no clock. A curve is a list of ``(t, bytes)`` samples, ``t`` in
seconds from the measurement's zero time and ``bytes`` cumulative, taken at memoryless random
instants (OONI dd-007; ndt7 does the same) so that sampling cannot lock onto a policer's period.

Rates are in **bits per second** (``_bps``) because throttles are specified that way
(128 kbit/s in ``tc``, Russia's 2021 Twitter throttle at 130-150 kbit/s).

The plateau test follows the detection notes (section 6.4): a policer or shaper holds a flow at
a fixed low rate, so the per-interval rate varies little (coefficient of variation below 0.2),
while congestion gives a high-variance curve. The CV is taken robustly (from the quartiles), so
the short stalls a dropping policer causes do not hide its plateau.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Sample = tuple[float, int]

GOODPUT_WINDOW = 512 * 1024  # goodput over the first 256-512 KiB, as OONI's body snapshot
PLATEAU_MAX_CV = 0.2
PLATEAU_MAX_BPS = 1_000_000.0  # "low" rate; policers seen in the wild sit at 64-256 kbit/s
PLATEAU_MIN_INTERVALS = 3
PLATEAU_WINDOW = 0.4  # seconds; shorter windows see single packets and TLS records, not rates
RATE_INTERVAL = 0.1  # seconds; the shortest span a throughput sample may cover


def since(samples: Iterable[Sample], start_t: float, start_bytes: int = 0) -> list[Sample]:
    """The samples taken at or after ``start_t``, rebased to begin at ``(start_t, 0)``."""
    out: list[Sample] = [(start_t, 0)]
    for t, count in samples:
        if t >= start_t:
            out.append((t, max(0, count - start_bytes)))
    return out


def bytes_at(samples: Sequence[Sample], t: float) -> int:
    """The cumulative count of the last sample taken at or before ``t`` (0 if none)."""
    count = 0
    for ts, n in samples:
        if ts > t:
            break
        count = n
    return count


def interval_rates(curve: Sequence[Sample], min_interval: float = RATE_INTERVAL) -> list[float]:
    """Rate (bit/s) over each gap between consecutive samples of a rebased curve.

    Gaps shorter than ``min_interval`` are merged into the next one: over a few milliseconds
    a rate counts single packets and TLS records, not the path's speed. A transfer that was
    over before ``min_interval`` still yields its one rate, over all the time it took.
    """
    rates: list[float] = []
    if not curve:
        return rates
    t0, n0 = curve[0]
    for t, n in curve[1:]:
        if t - t0 < min_interval:
            continue
        rates.append(8.0 * (n - n0) / (t - t0))
        t0, n0 = t, n
    t, n = curve[-1]
    if not rates and t > t0:
        rates.append(8.0 * (n - n0) / (t - t0))
    return rates


def goodput(curve: Sequence[Sample], window: int = GOODPUT_WINDOW) -> float | None:
    """Bits per second over the first ``window`` bytes of a rebased curve.

    The time is that of the first sample at or beyond ``window`` bytes; a transfer that never
    got there (a timeout while bytes still arrived, or a smaller object) counts all it got over
    all the time it took. None when no time elapsed.
    """
    if len(curve) < 2:
        return None
    t0 = curve[0][0]
    for t, n in curve[1:]:
        if n >= window and t > t0:
            return 8.0 * n / (t - t0)
    t, n = curve[-1]
    return 8.0 * n / (t - t0) if t > t0 else None


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample standard deviation over mean; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean <= 0:
        return None
    return statistics.stdev(values) / mean


def robust_cv(values: Sequence[float]) -> float | None:
    """The interquartile range over 1.349 times the median: the CV of normally distributed
    values, but one retransmission stall (a zero-rate interval) cannot inflate it.
    None for fewer than three values or a zero median."""
    if len(values) < 3:
        return None
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    if median <= 0:
        return None
    return (q3 - q1) / (1.349 * median)


@dataclass(frozen=True, slots=True)
class Plateau:
    """``found`` when the steady-state rate is low and nearly constant."""

    found: bool
    rate_bps: float | None
    cv: float | None
    intervals: int


def plateau(
    rates: Sequence[float],
    max_cv: float = PLATEAU_MAX_CV,
    max_bps: float = PLATEAU_MAX_BPS,
    min_intervals: int = PLATEAU_MIN_INTERVALS,
) -> Plateau:
    """Recognise a policer's plateau in per-interval rates (use ``PLATEAU_WINDOW`` intervals).

    The first interval is left out: it holds the round trip to the first byte and any burst
    the token bucket lets through before the limit bites.
    """
    steady = list(rates[1:])
    if len(steady) < min_intervals:
        return Plateau(False, None, None, len(steady))
    rate = statistics.median(steady)
    cv = robust_cv(steady)
    found = cv is not None and cv < max_cv and 0 < rate <= max_bps
    return Plateau(found, rate, cv, len(steady))


def stalls(curve: Sequence[Sample], min_gap: float = 1.0) -> int:
    """Spans of at least ``min_gap`` seconds during which the count did not grow.

    A span runs from the sample that last saw new bytes to the next sample that does, so a
    stall seen by several consecutive samples counts once.
    """
    count = 0
    if not curve:
        return count
    last_t, last_n = curve[0]
    for t, n in curve[1:]:
        if n != last_n:
            last_t, last_n = t, n
            continue
        if t - last_t >= min_gap:
            count += 1
            last_t = float("inf")  # counted; wait for new bytes before the next span
    return count
