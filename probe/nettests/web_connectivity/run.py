"""Run one web connectivity measurement end to end and wrap it in the envelope."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from probe.core.measurement import envelope
from probe.nettests.control_client import ControlClient
from probe.nettests.web_connectivity import measure as web


async def run_web_connectivity(
    url: str,
    options: web.WebOptions,
    control: ControlClient | None,
    *,
    cc: str = "ZZ",
    asn: str = "AS0",
    network_name: str | None = None,
    probe_id: str | None = None,
    started: datetime | None = None,
) -> dict[str, Any]:
    """``started`` is the measurement's wall-clock start (now by default; the daemon passes
    its own clock so a simulated day keeps simulated timestamps)."""
    started = started or datetime.now(UTC)
    t0 = time.monotonic()
    keys = await web.measure(url, options, control, cc=None if cc == "ZZ" else cc)
    return envelope(
        test_name="web_connectivity", input_=url, test_keys=keys, started=started,
        runtime=time.monotonic() - t0, cc=cc, asn=asn, network_name=network_name,
        probe_id=probe_id,
    )
