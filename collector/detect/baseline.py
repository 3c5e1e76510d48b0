"""A same-hour rolling median that never learns from anomalies and can be frozen.

Method: values are gathered per clock hour; when an hour ends its median becomes that day's
point for that hour-of-day slot. The prediction for an hour is the median of the slot's points
of the last ``baseline_window`` (7 days); while the slot has fewer than ``baseline_min_points``
the neighbouring hours' points are added (up to three hours either side), so a young baseline
keeps the daily cycle instead of mixing evening with night. Before a point is stored it is
compared with the prediction: outside ``[inpaint_low, inpaint_high]`` the *prediction* is
stored instead, for at most ``inpaint_max``, after which the new level is accepted as normal
(IODA's inpainting in watchtower-sentry: 0.8-2.0 for 7 days, ref §1.3). A frozen hour (event
window, or the series is part of an open event) stores nothing.

Sources: ref §6.2 (7-day median, inpainting), ref §6.4 (7-day same-hour median for throttling
baselines), ref §6.5 (freeze inside event windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.detect.params import ThrottleParams
from collector.detect.saved import mapping, maybe_number, numbers
from collector.detect.stats import median

HOUR = 3600.0


@dataclass(slots=True)
class HourlyBaseline:
    """Serializable state: per-slot points, the hour being gathered, the anomaly clock."""

    slots: dict[int, list[list[float]]] = field(default_factory=dict)  # hour -> [[t, value]]
    hour: float | None = None  # start of the hour being gathered
    values: list[float] = field(default_factory=list)
    frozen: bool = False  # the hour being gathered must not be learned
    anomalous_since: float | None = None
    # Not state: the last prediction, valid until the next commit (predict runs once per bin).
    cache: tuple[float, float | None] | None = None

    def to_state(self) -> dict[str, object]:
        return {"slots": {str(k): v for k, v in self.slots.items()}, "hour": self.hour,
                "values": self.values, "frozen": self.frozen,
                "anomalous_since": self.anomalous_since}

    @classmethod
    def from_state(cls, data: object) -> HourlyBaseline:
        d = mapping(data)
        return cls(slots={int(k): [numbers(p) for p in v]
                          for k, v in mapping(d["slots"]).items()},
                   hour=maybe_number(d["hour"]), values=numbers(d["values"]),
                   frozen=bool(d["frozen"]), anomalous_since=maybe_number(d["anomalous_since"]))


@dataclass(slots=True)
class Baselines:
    """The hourly baselines the bin detectors share: handshake time per (network, target),
    ``"cc|asn|target"``, and each probe's slowness over those, by probe id."""

    targets: dict[str, HourlyBaseline] = field(default_factory=dict)
    probes: dict[str, HourlyBaseline] = field(default_factory=dict)

    def to_state(self) -> dict[str, object]:
        return {"targets": {k: b.to_state() for k, b in self.targets.items()},
                "probes": {k: b.to_state() for k, b in self.probes.items()}}

    @classmethod
    def from_state(cls, data: object) -> Baselines:
        d = mapping(data)
        return cls({str(k): HourlyBaseline.from_state(v) for k, v in mapping(d["targets"]).items()},
                   {str(k): HourlyBaseline.from_state(v) for k, v in mapping(d["probes"]).items()})


def _slot(t: float) -> int:
    return int(t // HOUR) % 24


def predict(base: HourlyBaseline, t: float, params: ThrottleParams) -> float | None:
    """The expected value at ``t``, or None while there is too little history."""
    hour = t - t % HOUR
    if base.cache is not None and base.cache[0] == hour:
        return base.cache[1]
    value = _predict(base, hour, params)
    base.cache = (hour, value)
    return value


def _predict(base: HourlyBaseline, t: float, params: ThrottleParams) -> float | None:
    # The same hour's points; while they are too few (a young baseline), the neighbouring
    # hours' too, widening by an hour at a time up to three: a daily cycle is kept, never
    # mixed with the opposite end of the day.
    horizon = t - params.baseline_window
    slot = _slot(t)
    points: list[float] = []
    for width in range(4):
        points = [v for offset in range(-width, width + 1)
                  for start, v in base.slots.get((slot + offset) % 24, []) if start >= horizon]
        if len(points) >= params.baseline_min_points:
            return median(points)
    return None


def _commit(base: HourlyBaseline, params: ThrottleParams) -> None:
    if base.hour is None or not base.values or base.frozen:
        return
    value = median(base.values)
    assert value is not None
    expected = predict(base, base.hour, params)
    if expected is not None and expected > 0:
        ratio = value / expected
        if not params.inpaint_low <= ratio <= params.inpaint_high:
            if base.anomalous_since is None:
                base.anomalous_since = base.hour
            if base.hour - base.anomalous_since < params.inpaint_max:
                value = expected
        else:
            base.anomalous_since = None
    base.cache = None
    points = base.slots.setdefault(_slot(base.hour), [])
    points.append([base.hour, value])
    horizon = base.hour - params.baseline_window
    while points and points[0][0] < horizon:
        points.pop(0)


def add(base: HourlyBaseline, t: float, value: float, params: ThrottleParams,
        frozen: bool = False) -> None:
    """Add one observation at ``t``. Observations must come in time order per hour; a value
    for an hour already committed is ignored. ``frozen`` marks the whole hour unlearnable."""
    hour = t - t % HOUR
    if base.hour is not None and hour < base.hour:
        return
    if base.hour != hour:
        _commit(base, params)
        base.hour, base.values, base.frozen = hour, [], False
    base.values.append(value)
    base.frozen = base.frozen or frozen
