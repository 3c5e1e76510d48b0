"""The collector's limits on what a client sends (``limits:`` in its config).

Apart from ``collector.config`` so that what checks uploads (``collector.api.validate``, also
imported by every ingest worker process) does not import the whole configuration's modules:
a worker then starts with a fraction of their memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.core.typed_config import checked, duration_field, positive


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = checked(8 * 1024 * 1024, positive)
    max_batch: int = checked(1000, positive)
    max_measurement_bytes: int = checked(2 * 1024 * 1024, positive)
    max_json_depth: int = checked(32, positive)
    rate_per_minute: int = checked(600, positive)
    retention: float = duration_field(400 * 86400.0, positive)
    future_skew: float = duration_field(3600.0, positive)
    max_heartbeat_bytes: int = checked(16 * 1024, positive)
    # A request's line and headers must arrive within this time (collector.server).
    header_timeout: float = duration_field(20.0, positive)
