"""A token bucket that bounds the prober's total packet rate.

Why: the operator answers for every packet the collector sends into another country's
networks, so the rate is one explicit number for the whole prober (default a few packets per
second), whatever the number of blocks. The bucket is pure: the caller passes the time, so it
is tested without sleeping, and the prober sleeps for the wait it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

_TOLERANCE = 1e-9


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per packet."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float | None = None

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0 packets per second, got {self.rate}")
        if not self.burst >= 1:
            raise ValueError(f"burst must be >= 1 packet, got {self.burst}")

    def _refill(self, now: float) -> None:
        if self.stamp is None:
            self.tokens = self.burst
        elif now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now if self.stamp is None else max(self.stamp, now)

    def try_take(self, now: float) -> float:
        """Take one token if there is one and return 0.0; else return the seconds to wait."""
        self._refill(now)
        # Waiting exactly the returned time can leave the count a rounding error short of 1
        # (1 - 1e-16), and a wait that small does not move a clock at 1e3 seconds: without
        # the tolerance the caller would spin. 1e-9 of a packet changes no real rate.
        if self.tokens >= 1.0 - _TOLERANCE:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
