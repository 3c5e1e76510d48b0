"""Zero time of a measurement and relative timestamps, as OONI's ``t0``/``t`` fields."""

from __future__ import annotations

import time
from collections.abc import Callable


class Trace:
    """Holds the zero time of one measurement; ``now()`` is seconds since then.

    The clock is injectable so tests and benchmarks can drive time explicitly.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._zero = clock()
        self.network_events: list[dict[str, object]] = []
        self._transactions = 0

    def now(self) -> float:
        return round(self._clock() - self._zero, 6)

    def transaction(self) -> int:
        """A new OONI ``transaction_id``: one per lookup and one per endpoint flow, so the TLS
        and HTTP records of a connection can be joined to its TCP record."""
        self._transactions += 1
        return self._transactions

    def event(self, operation: str, **fields: object) -> None:
        """Append an OONI df-008 network event (for example ``bytes_received_cumulative``)."""
        self.network_events.append({"operation": operation, "t": self.now(), **fields})
