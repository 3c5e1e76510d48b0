"""The daemon's side of the clock check (``probe.daemon.clock_check``): read the collector's
``Date`` after each answer, mark each measurement with the clock's state when it is recorded,
and give the offset, once known, to the spooled measurements taken while it was not.

``ClockWatch`` holds the state and does no I/O; this service adds the spool and the logs.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from probe.core.measurement import ooni_time
from probe.daemon.clock import Clock
from probe.daemon.clock_check import (
    OFFSET,
    UNVERIFIED,
    ClockWatch,
    describe_offset,
    parse_http_date,
)
from probe.local.journal import CLOCK_CHECKED, CLOCK_OFFSET, CLOCK_STATUS
from probe.local.spool import Spool

# The daemon's log lines keep the one name volunteers read in ``journalctl``.
log = logging.getLogger("probe.daemon.loop")

# Unverified measurements remembered for the offset (a week of a ladder a minute and a few
# dozen sites an hour); older ones keep only their clock_unverified mark.
UNVERIFIED_KEPT = 20_000


class ClockService:
    """``check`` after each answer of the collector, ``mark`` on each measurement recorded."""

    def __init__(self, watch: ClockWatch, clock: Clock, spool: Spool,
                 server_date: Callable[[], str | None]) -> None:
        self.watch = watch
        self.clock = clock
        self.spool = spool
        self.server_date = server_date
        # Measurements spooled while the clock was unverified: (uid, clock epoch), to be
        # given the offset once it is known.
        self.unverified: deque[tuple[str, int]] = deque(maxlen=UNVERIFIED_KEPT)

    def note_jump(self) -> None:
        step = self.watch.jumped(self.clock.now(), self.clock.monotonic())
        if step is not None:
            self.unverified.clear()  # taken on a clock that is no more: no offset fits them
            log.warning("the system clock jumped by %s (NTP, or set by hand); measurements "
                        "are marked unverified until the collector's clock is read again",
                        describe_offset(step))

    def mark(self, measurement: dict[str, Any]) -> None:
        """Annotate ``measurement`` with the clock's state now (``clock_unverified``,
        ``clock_offset_s``) and remember it if unverified."""
        self.note_jump()
        marks = self.watch.annotations(self.clock.monotonic())
        if marks:
            measurement["annotations"] = {**(measurement.get("annotations") or {}), **marks}
            if UNVERIFIED in marks:
                self.unverified.append((str(measurement["measurement_uid"]),
                                        self.watch.epoch))

    async def check(self, sent: datetime) -> dict[str, str | None]:
        """Compare the clock with the ``Date`` of the collector's answer to a request sent at
        ``sent``; returns the journal keys to write with the caller's own."""
        server = parse_http_date(self.server_date())
        if server is None:
            return {}
        self.note_jump()
        mono = self.clock.monotonic()
        before = self.watch.status(mono)
        check = self.watch.observe(server, sent, self.clock.now(), mono)
        status = self.watch.status(mono)
        if status == "off" and before != "off":
            log.warning("this device's clock differs from the collector's by %s; "
                        "measurements keep their own times and carry the offset "
                        "(annotation %s)", describe_offset(check.offset), OFFSET)
        elif status == "ok" and before != "ok":
            log.info("clock checked against the collector's: offset %s",
                     describe_offset(check.offset))
        await self.annotate_unverified(check.offset)
        return {CLOCK_STATUS: status, CLOCK_OFFSET: f"{check.offset:.1f}",
                CLOCK_CHECKED: ooni_time(check.at)}

    async def annotate_unverified(self, offset: float) -> None:
        """Give the offset just measured to the still-spooled measurements taken while the
        clock was unverified, if the clock has not jumped since (same epoch)."""
        epoch = self.watch.epoch
        uids = {uid for uid, taken in self.unverified if taken == epoch}
        self.unverified.clear()
        if not uids:
            return
        value = f"{offset:.1f}"

        def annotate(body: str) -> str:
            document = json.loads(body)
            document["annotations"] = {**(document.get("annotations") or {}), OFFSET: value}
            return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

        changed = await self.spool.rewrite_some(uids, annotate)
        if changed:
            log.info("%d measurements taken while the clock was unverified now carry its "
                     "offset (%s); their times are as measured", changed,
                     describe_offset(offset))
