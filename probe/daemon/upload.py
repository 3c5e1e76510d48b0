"""Which spooled measurements a refused batch names, read from the collector's answer.

``Uploads`` is the daemon's upload protocol as a service: it drains the spool oldest first in
batches, acknowledges what the collector stored, backs off when the collector does not answer
and sets aside what it refuses. The daemon gives it callbacks for what is the loop's (planning
the next try, the clock check, refreshing its counters), so it runs alone against a collector.

The collector refuses a batch as a whole and lists each bad measurement in its JSON error,
``{"error": ..., "rejected": [{"index", "uid", "reason", "message"}]}`` (see the collector's
OpenAPI document). The daemon sets exactly those aside in quarantine and sends the rest; the
list is read field by field, never parsed out of the error text, so a reworded message changes
nothing here. A refusal that names nothing (a body too large, an older collector) leaves the
caller to halve the batch until the refused measurement is alone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from probe.config import probe_config
from probe.core.measurement import ooni_time
from probe.daemon import scheduler
from probe.daemon.clock import Clock
from probe.daemon.endpoints import FailoverUploader
from probe.daemon.uploader import Uploader, UploadError
from probe.local.journal import (
    COLLECTOR_PATH,
    LAST_UPLOAD,
    LAST_UPLOAD_ATTEMPT,
    LAST_UPLOAD_ERROR,
    Journal,
)
from probe.local.spool import Entry, Spool

log = logging.getLogger("kuzot.daemon")

BATCH_BYTES = 4 * 1024 * 1024  # half the collector's default body limit, before gzip
COMPACT_AFTER = 1000  # measurements sent in one drain after which the spool is compacted


def path_state(uploader: Uploader, now: datetime) -> dict[str, str]:
    """The journal entry of how the collector was reached last (``probe status`` shows it,
    the next start resumes from it), or nothing for an uploader without endpoints."""
    record = uploader.last_success(now) if isinstance(uploader, FailoverUploader) else None
    return {COLLECTOR_PATH: record} if record is not None else {}


@dataclass(frozen=True, slots=True)
class Refused:
    """One spooled measurement the collector refused, and why (its message, else reason)."""

    entry: Entry
    reason: str


def refused(batch: list[Entry], rejected: list[dict[str, Any]]) -> list[Refused]:
    """The entries of ``batch`` the collector's ``rejected`` list names: by uid, else (a
    measurement whose uid the collector could not read) by its index in the batch."""
    by_uid = {entry.uid: entry for entry in batch}
    found: dict[str, Refused] = {}
    for item in rejected:
        reason = str(item.get("message") or item.get("reason"))
        uid = item.get("uid")
        index = item.get("index")
        if isinstance(uid, str) and uid in by_uid:
            entry = by_uid[uid]
        elif isinstance(index, int) and not isinstance(index, bool) and \
                0 <= index < len(batch):
            entry = batch[index]
        else:
            continue
        found.setdefault(entry.uid, Refused(entry, reason))
    return list(found.values())


class Uploads:
    """Sends the spool to the collector; keeps the batch size and the failure count."""

    def __init__(self, config: probe_config.ProbeConfig, spool: Spool, journal: Journal,
                 uploader: Uploader, *, clock: Clock, rng: random.Random,
                 scrub: Callable[[str], str],
                 plan: Callable[[float], None],
                 check_clock: Callable[[datetime], Awaitable[dict[str, str | None]]],
                 refresh: Callable[[], Awaitable[None]],
                 queued: Callable[[], int]) -> None:
        self.config = config
        self.spool = spool
        self.journal = journal
        self.uploader = uploader
        self.clock = clock
        self.rng = rng
        self._scrub = scrub  # the own addresses out of each body, as sent
        self._plan = plan  # the next upload, this many seconds from now
        self._check_clock = check_clock  # journal keys of the clock check of an answer
        self._refresh = refresh  # the daemon's spool depth and traffic, after each batch
        self._queued = queued  # measurements waiting, for the logs
        self.failures = 0  # consecutive failed uploads
        self.last: datetime | None = None  # the last batch the collector stored
        self.batch_limit = config.collector.upload_batch

    async def drain(self, stopping: Callable[[], bool]) -> None:
        """Send the spool oldest first until it is empty or the collector stops answering."""
        schedule = self.config.schedule
        sent = 0
        try:
            while not stopping():
                batch = await self.spool.batch(self.batch_limit, BATCH_BYTES)
                if not batch:
                    self._plan(schedule.upload_interval)
                    if sent >= COMPACT_AFTER:
                        await self.spool.compact()  # a backlog went out: free the space
                    return
                now = self.clock.now()
                bodies = [self._scrub(entry.body) for entry in batch]
                try:
                    result = await self.uploader.upload_bodies(bodies)
                except UploadError as exc:
                    await self.journal.set(**{LAST_UPLOAD_ATTEMPT: ooni_time(now),
                                              LAST_UPLOAD_ERROR: str(exc)[:300]})
                    if exc.kind == "rejected":
                        await self.set_aside(batch, exc, now)
                        continue
                    self.failed(exc)
                    return
                acked = set(result.stored) & {entry.uid for entry in batch}
                if not acked:
                    self.failed(UploadError("collector stored nothing", kind="server"))
                    return
                await self.spool.ack(acked)
                clock_state = await self._check_clock(now)
                sent += len(acked)
                self.failures = 0
                self.last = now
                self.batch_limit = min(self.config.collector.upload_batch,
                                       self.batch_limit * 2)
                await self.journal.set(**{LAST_UPLOAD: ooni_time(now),
                                          LAST_UPLOAD_ATTEMPT: ooni_time(now),
                                          LAST_UPLOAD_ERROR: None, **clock_state,
                                          **path_state(self.uploader, now)})
                await self._refresh()
        finally:
            await self._refresh()

    def failed(self, exc: UploadError) -> None:
        # Reachability is the heartbeats' to judge: a collector that answers heartbeats but
        # not uploads (a censor throttling large requests) must get the backoff, not a retry
        # after every successful heartbeat.
        self.failures += 1
        delay = scheduler.backoff(self.failures, self.config.schedule.retry_min,
                                  self.config.schedule.retry_max, self.rng, exc.retry_after)
        log.warning("upload failed (%s); %d measurements kept, next try in %.0f s", exc,
                    self._queued(), delay)
        self._plan(delay)

    async def set_aside(self, batch: list[Entry], exc: UploadError, now: datetime) -> None:
        """The collector refused the batch: quarantine the measurements its ``rejected`` list
        names, or halve the batch until the refused one is alone."""
        named = refused(batch, exc.rejected)
        if not named and len(batch) == 1:
            named = [Refused(batch[0], str(exc))]
        if not named:
            self.batch_limit = max(1, len(batch) // 2)
            return
        for bad in named:
            log.error("collector refused measurement %s (%s); set aside in quarantine",
                      bad.entry.uid, bad.reason)
            await self.spool.quarantine(bad.entry.uid, bad.reason, ooni_time(now))
