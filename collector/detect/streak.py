"""Run and recovery bookkeeping shared by the bin-based detectors (blocks, collapse, throttling).

Each settled bin that holds data is *hot* (the anomaly is there), *clean* (the series is back
to normal by the stricter exit threshold) or neither. A run is a sequence of consecutive
non-clean bins that starts with a hot one; persistence is the number of hot bins in it. Bins
without data are neutral: they neither extend nor break anything, so persistence counts probe
cycles whatever the bin width. Recovery needs ``exit_bins`` consecutive clean bins: the IODA
SARIMA hysteresis (enter at one threshold, leave only at a stricter one, ref §1.4, §6.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.detect.saved import integer, maybe_number, record


@dataclass(slots=True)
class Streak:
    hot_bins: int = 0
    run_start: float | None = None
    clean_bins: int = 0
    clean_start: float | None = None
    last_bin: float | None = None

    def step(self, bin_start: float, hot: bool, clean: bool) -> bool:
        """Advance by one bin with data; returns True when a new run starts here."""
        self.last_bin = bin_start
        if clean:
            self.hot_bins = 0
            self.run_start = None
            if self.clean_bins == 0:
                self.clean_start = bin_start
            self.clean_bins += 1
            return False
        self.clean_bins = 0
        self.clean_start = None
        if not hot:
            return False
        started = self.run_start is None
        if started:
            self.run_start = bin_start
        self.hot_bins += 1
        return started

    def recovered(self, exit_bins: int) -> float | None:
        """When recovery began, once ``exit_bins`` clean bins in a row have been seen."""
        return self.clean_start if self.clean_bins >= exit_bins else None

    def to_state(self) -> dict[str, float | int | None]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_state(cls, data: object) -> Streak:
        d = record(data, FIELDS)
        return cls(integer(d["hot_bins"] or 0), maybe_number(d["run_start"]),
                   integer(d["clean_bins"] or 0), maybe_number(d["clean_start"]),
                   maybe_number(d["last_bin"]))


FIELDS = ("hot_bins", "run_start", "clean_bins", "clean_start", "last_bin")
