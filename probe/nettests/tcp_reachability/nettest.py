"""TCP reachability as a kind of test: one daemon job per configured endpoint."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from probe.core.measurement import envelope
from probe.nettests import Kind, Measurement, Plan
from probe.nettests.tcp_reachability import analysis, measure

if TYPE_CHECKING:
    from probe.config.probe_config import ProbeConfig

TEST_NAME = "tcp_reachability"


async def run(config: ProbeConfig, endpoint: str, started: datetime) -> Measurement:
    """One measurement of ``endpoint``: keys, verdict and envelope."""
    settings, identity = config.tcp_reachability, config.identity
    t0 = time.monotonic()
    keys = await measure.measure(endpoint, settings.timeout, settings.max_addresses,
                                 config.timeouts.dns)
    keys["analysis"] = analysis.analyze(keys)
    return envelope(test_name=TEST_NAME, input_=endpoint, test_keys=keys, started=started,
                    runtime=time.monotonic() - t0, cc=identity.country,
                    asn=identity.asn or "AS0", network_name=identity.network_name,
                    probe_id=identity.probe_id)


def plan(config: ProbeConfig) -> Plan | None:
    settings = config.tcp_reachability
    if not settings.enabled or not settings.endpoints:
        return None

    async def one(endpoint: str, started: datetime) -> Measurement:
        return await run(config, endpoint, started)

    budget = config.timeouts.dns + settings.timeout * settings.max_addresses + 1.0
    return Plan(inputs=settings.endpoints, interval=settings.interval, budget=budget,
                measure=one)


NETTEST = Kind(name="tcp_reachability", test_names=(TEST_NAME,), version="0.1.0",
               analysis_version=analysis.ANALYSIS_VERSION,
               schedule=plan)
