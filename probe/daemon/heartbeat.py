"""What a heartbeat tells the collector (the probe's queue, link, budget and controls), and
the heartbeat protocol as a service (``Heartbeats``): send it, and react to the answer.

The body is built from a snapshot of what the daemon knows (``probe.daemon.state.DaemonState``),
so it can be checked alone against a real collector, apart from the loop that sends it every
minute. The answer carries the event windows, the address the collector saw (which joins the
scrub list), a signed endpoint announcement (``probe.daemon.announce``) and the version of the
target lists the collector serves (``probe.config.target_sync``).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from probe import __version__
from probe.config import probe_config, target_sync
from probe.core.measurement import ooni_time
from probe.core.typed_config import ConfigError
from probe.daemon import announce, upload, windows
from probe.daemon.endpoints import FailoverUploader
from probe.daemon.state import DaemonState
from probe.daemon.uploader import Uploader, UploadError
from probe.local.journal import (
    ANNOUNCED,
    CLOCK_STATUS,
    EVENT_WINDOWS,
    LAST_HEARTBEAT,
    LAST_HEARTBEAT_ATTEMPT,
    LAST_HEARTBEAT_ERROR,
)

if TYPE_CHECKING:
    from probe.daemon.loop import Daemon

# The daemon's log lines keep the one name volunteers read in ``journalctl``.
log = logging.getLogger("probe.daemon.loop")


def body(config: probe_config.ProbeConfig, uploader: Uploader, status: DaemonState,
         now: datetime) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/heartbeat``."""
    sent: dict[str, Any] = {} if uploader.token else {
        # With a token the collector knows who we are (and refuses a probe_id that differs
        # from the token's); without one the id is how it tells probes apart.
        "probe_id": config.identity.probe_id}
    if config.identity.country != "ZZ":
        # The answer's event windows and target-list version are this country's.
        sent["probe_cc"] = config.identity.country
    controls = status.controls
    return sent | {
        "sent_at": ooni_time(now),
        "software_version": __version__,
        "queue_depth": status.depth.measurements,
        "queue_bytes": status.depth.bytes,
        "oldest_queued": status.depth.oldest,
        "evicted_total": status.counters.get("evicted", 0),
        "online": status.online,
        "in_event_window": status.in_event_window,
        "data_used_today": status.used_today,
        "data_budget": status.budget,
    } | ({"collector_endpoint": uploader.endpoint_used,
          "collector_path": uploader.path_used,
          "collector_fallback": uploader.fallback_used}
         if isinstance(uploader, FailoverUploader) else {}) | (
        {"control_endpoint": controls.get("endpoint"),
         "controls_blocked": controls.get("blocked", False)} if controls else {})


class Heartbeats:
    """Sends the heartbeat and applies its answer to the daemon: whether the collector
    answers (the ladder goes to its offline cadence, the upload is pulled forward when it
    is back), the clock check, the event windows, the observed address, endpoint
    announcements and new target lists."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.counts = {"ok": 0, "failed": 0}
        self.last: datetime | None = None
        self.announced_serial = 0  # of the endpoint announcement applied
        self.refused_announcement: object = None

    async def beat(self) -> None:
        d = self.daemon
        now = d.clock.now()
        sent = body(d.config, d.uploader, d.state(), now)
        try:
            answer = await d.uploader.heartbeat(sent)
        except UploadError as exc:
            self.counts["failed"] += 1
            if d.reachable is not False:
                log.warning("collector unreachable (%s); measuring on and keeping everything "
                            "in the spool", exc)
                d.timetable.plan_earlier(
                    "ladder", d.clock.monotonic() + d.config.schedule.offline_ladder_interval)
            d.reachable = False
            # Unverified again once the last check is too old (probe.daemon.clock_check).
            await d.journal.set(**{LAST_HEARTBEAT_ATTEMPT: ooni_time(now),
                                   LAST_HEARTBEAT_ERROR: str(exc)[:300],
                                   CLOCK_STATUS: d.clockwatch.status(d.clock.monotonic())})
            await d.count_traffic()
            return
        self.counts["ok"] += 1
        self.last = now
        # Before the upload is pulled forward: what waits in the spool gets the clock's
        # offset first, if it was taken while the clock was unverified.
        clock_state = await d.clocks.check(now)
        if d.reachable is not True:
            log.info("collector reachable; %d measurements to upload", d.depth.measurements)
            d.uploads.failures = 0
            d.timetable.plan_earlier("upload", d.clock.monotonic())
        d.reachable = True
        await d.journal.set(**{LAST_HEARTBEAT: ooni_time(now),
                               LAST_HEARTBEAT_ATTEMPT: ooni_time(now),
                               LAST_HEARTBEAT_ERROR: None, **clock_state,
                               **upload.path_state(d.uploader, now)})
        observed = answer.get("observed_address")
        if isinstance(observed, str):
            await d.learn([observed], only_identifying=False)
        if "event_windows" in answer:
            told = windows.parse(answer["event_windows"], d.config.identity.country)
            if told != d.event_windows:
                d.event_windows = told
                await d.journal.set(**{EVENT_WINDOWS: json.dumps(windows.to_wire(told))})
        if announce.FIELD in answer:
            await self.consider_announcement(answer[announce.FIELD], now)
        announced = answer.get("targets_version")
        if isinstance(announced, str) and d.config_path is not None and \
                d.config.target_sync.enabled and "target_lists" not in d.in_flight and \
                announced != target_sync.cached_version(d.config):
            d.spawn("target_lists", self.refresh_targets())
        await d.count_traffic()

    async def refresh_targets(self) -> None:
        """Fetch the lists the collector announced and measure them from now on: new targets
        are planned like targets at start, dropped ones are planned no more. A fetch that
        fails keeps the lists the probe has (``probe.config.target_sync``)."""
        d = self.daemon
        assert d.config_path is not None
        # Through the uploader's endpoints, announced ones too, sharing its failover memory.
        shared = d.uploader.endpoints if isinstance(d.uploader, FailoverUploader) else None
        log.info("%s", await target_sync.refresh(d.config, d.uploader.token,
                                                 traffic=d.add_traffic, endpoints=shared))
        try:
            fresh = probe_config.load(d.config_path)
        except ConfigError as exc:  # the file changed under the daemon: keep what runs
            log.warning("target lists not applied: %s", exc)
            return
        d.replace_targets(fresh.targets)

    async def load_announcement(self) -> None:
        """Put the endpoints of the last applied announcement back after a restart (it was
        verified when it came; an expired one is still a better guess than none)."""
        d = self.daemon
        saved = await d.journal.get(ANNOUNCED)
        if not saved or not isinstance(d.uploader, FailoverUploader):
            return
        try:
            kept = announce.kept(saved)
        except announce.AnnouncementError as exc:
            log.warning("kept endpoint announcement not used: %s", exc)
            return
        self.announced_serial = kept.serial
        d.uploader.endpoints.announce(kept.endpoints)

    async def consider_announcement(self, message: object, now: datetime) -> None:
        """Apply a signed endpoint announcement of a heartbeat answer (probe.daemon.announce);
        anything not signed by the operator's key, older or expired is refused and logged."""
        d = self.daemon
        key = d.config.collector.announce_key
        if key is None or not isinstance(d.uploader, FailoverUploader):
            return
        try:
            found = announce.verify(message, key, now, self.announced_serial)
        except announce.AnnouncementError as exc:
            if message != self.refused_announcement:  # once per distinct message
                log.warning("endpoint announcement refused: %s", exc)
                self.refused_announcement = message
            return
        d.uploader.endpoints.announce(found.endpoints)
        self.announced_serial = found.serial
        await d.journal.set(**{ANNOUNCED: found.to_json()})
        log.info("collector announced endpoints (serial %d): %s", found.serial,
                 ", ".join(e.name for e in found.endpoints))
