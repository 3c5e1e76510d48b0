"""What a heartbeat tells the collector: the probe's queue, link, budget and controls.

Built from a snapshot of what the daemon knows (``probe.daemon.state.DaemonState``), so the
body can be checked alone against a real collector, apart from the loop that sends it every
minute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from probe import __version__
from probe.config import probe_config
from probe.core.measurement import ooni_time
from probe.daemon.endpoints import FailoverUploader
from probe.daemon.state import DaemonState
from probe.daemon.uploader import Uploader


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
