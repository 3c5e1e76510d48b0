"""A per-day byte budget kept in a small JSON file, so it survives restarts.

Volunteers pay for their data (OONI users ask for data caps); throttling tests are the only
checks that move real volume, so they draw from this budget before each transfer. The day is
the UTC calendar day; the file also remembers when the last throttling round ran, so the
cadence holds across restarts. A file that cannot be read starts a fresh day: losing the count
must not stop measurements forever, and the worst case is one day's budget spent twice.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


class ByteBudget:
    """``allows(n)`` before a transfer of at most n bytes, ``charge(n)`` after it."""

    def __init__(self, path: str | Path | None, daily_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path else None
        self.daily_bytes = daily_bytes
        self.clock = clock
        self._day = ""
        self.used = 0
        self.last_round: float | None = None
        self._load()

    def _today(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    def _load(self) -> None:
        self._day, self.used = self._today(), 0
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict):
            return
        last = data.get("last_round")
        self.last_round = float(last) if isinstance(last, int | float) else None
        used = data.get("used")
        if data.get("day") == self._day and isinstance(used, int) and used >= 0:
            self.used = used

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self.used = today, 0

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        temporary.write_text(json.dumps({"day": self._day, "used": self.used,
                                         "last_round": self.last_round}), encoding="utf-8")
        os.replace(temporary, self.path)

    def remaining(self) -> int:
        self._roll()
        return max(0, self.daily_bytes - self.used)

    def allows(self, nbytes: int) -> bool:
        return self.remaining() >= nbytes

    def charge(self, nbytes: int) -> None:
        self._roll()
        self.used += max(0, nbytes)
        self._save()

    def mark_round(self) -> None:
        """Remember that a throttling round started now."""
        self.last_round = self.clock()
        self._save()

    def due(self, interval: float) -> bool:
        """Whether ``interval`` seconds have passed since the last round (or none ran)."""
        return self.last_round is None or self.clock() - self.last_round >= interval
