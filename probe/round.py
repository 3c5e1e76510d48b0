"""One round: the connectivity ladder, then every target with bounded concurrency.

The one ``asyncio.Semaphore`` of the probe lives here. A check that raises (a bug, not a
network failure) is turned into a measurement with ``unknown_failure`` at ``top_level``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from probe import connectivity, failures
from probe.checks import web
from probe.config import ProbeConfig, Target
from probe.control_client import ControlClient
from probe.measurement import envelope
from probe.web_test import run_web_connectivity

log = logging.getLogger(__name__)
Progress = Callable[[int, int, dict[str, Any]], None]


def web_options(config: ProbeConfig) -> web.WebOptions:
    t = config.timeouts
    return web.WebOptions(dns_timeout=t.dns, connect_timeout=t.connect, tls_timeout=t.tls,
                          http_timeout=t.http, udp_resolvers=config.resolvers,
                          doh_resolvers=config.doh_resolvers, ca_file=config.ca_file)


async def ladder_measurement(config: ProbeConfig) -> tuple[dict[str, Any], bool, str]:
    from datetime import UTC, datetime

    started = datetime.now(UTC)
    observation = await connectivity.measure(config.ladder)
    online, sentence = connectivity.summarise(observation)
    keys = {**observation, "analysis": {"online": online, "summary": sentence}}
    identity = config.identity
    measurement = envelope(test_name="connectivity", input_=None, test_keys=keys,
                           started=started, runtime=0.0, cc=identity.country,
                           asn=identity.asn or "AS0", probe_id=identity.probe_id)
    return measurement, online, sentence


async def run_targets(
    config: ProbeConfig, targets: tuple[Target, ...], progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Measure every target; returns measurements in completion order."""
    semaphore = asyncio.Semaphore(config.schedule.concurrency)
    control = ControlClient(config.control_base, timeout=config.timeouts.control,
                            ca_file=config.collector.ca_file)
    options = web_options(config)
    identity = config.identity
    done: list[dict[str, Any]] = []
    budget = config.timeouts.dns + config.timeouts.connect + config.timeouts.tls + \
        config.timeouts.http * 11 + config.timeouts.control

    async def one(target: Target) -> None:
        async with semaphore:
            try:
                async with asyncio.timeout(budget):
                    measurement = await run_web_connectivity(
                        target.url, options, control, cc=identity.country,
                        asn=identity.asn or "AS0", network_name=identity.network_name,
                        probe_id=identity.probe_id)
            except Exception as exc:
                log.exception("check of %s failed", target.url)
                from datetime import UTC, datetime

                keys = {"failure": failures.classify(exc), "operation": failures.OP_TOP_LEVEL,
                        "analysis": {"verdict": "inconclusive", "layer": None,
                                     "mechanism": None, "confidence": 0.0,
                                     "evidence": ["top_level_failure"]}}
                measurement = envelope(test_name="web_connectivity", input_=target.url,
                                       test_keys=keys, started=datetime.now(UTC), runtime=0.0,
                                       cc=identity.country, asn=identity.asn or "AS0",
                                       probe_id=identity.probe_id)
            done.append(measurement)
            if progress:
                progress(len(done), len(targets), measurement)

    await asyncio.gather(*(one(t) for t in targets))
    return done
