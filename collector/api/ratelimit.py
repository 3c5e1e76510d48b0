"""Per-probe token bucket: a misbehaving probe gets 429, the others are unaffected.

The bucket lives in the collector process: with several collectors behind a load balancer each
enforces the limit on what it receives. A request never costs more than a full bucket, so a
batch of ``max_batch`` measurements is accepted from a rested probe even when ``max_batch``
exceeds ``rate_per_minute``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` from ``key``'s bucket: 0.0 if allowed, else seconds to wait."""
        cost = min(cost, self.capacity)
        now = self.clock()
        tokens, last = self.buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < cost:
            self.buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate
        self.buckets[key] = (tokens - cost, now)
        return 0.0

    def allow(self, key: str, cost: float = 1.0) -> bool:
        return self.take(key, cost) == 0.0
