"""Run one platform check or one censor trace end to end and wrap it in the envelope."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from probe.config.platforms import OONI_GROUPS, PlatformsConfig
from probe.core.measurement import envelope
from probe.nettests.censor_trace import measure as censor_trace
from probe.nettests.control_client import ControlClient
from probe.nettests.platforms import measure as platforms


def test_name_of(platform: str) -> str:
    """OONI's test name for its im tests; ``platform`` (with the name as input) otherwise."""
    return platform if platform in OONI_GROUPS else "platform"


async def run_platform(
    name: str, config: PlatformsConfig, options: platforms.PlatformOptions,
    control: ControlClient | None, *, cc: str = "ZZ", asn: str = "AS0",
    network_name: str | None = None, probe_id: str | None = None,
    started: datetime | None = None, slots: asyncio.Semaphore | None = None,
) -> dict[str, Any]:
    started = started or datetime.now(UTC)
    t0 = time.monotonic()
    keys = await platforms.measure(name, config, options, control, slots=slots)
    test_name = test_name_of(name)
    return envelope(
        test_name=test_name, input_=None if test_name == name else name, test_keys=keys,
        started=started, runtime=time.monotonic() - t0, cc=cc, asn=asn,
        network_name=network_name, probe_id=probe_id,
    )


async def run_trace(
    url: str, options: censor_trace.TraceOptions, *, cc: str = "ZZ", asn: str = "AS0",
    probe_id: str | None = None, started: datetime | None = None,
) -> dict[str, Any]:
    started = started or datetime.now(UTC)
    t0 = time.monotonic()
    keys = await censor_trace.measure(url, options)
    return envelope(test_name="censor_trace", input_=url, test_keys=keys, started=started,
                    runtime=time.monotonic() - t0, cc=cc, asn=asn, probe_id=probe_id)
