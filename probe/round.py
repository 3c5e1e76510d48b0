"""Measuring: the connectivity ladder, one target, or a round of every target.

``measure_target`` is the unit both the daemon's scheduler and the quickstart's rounds use. A
check that raises (a bug, not a network failure) is turned into a measurement with
``unknown_failure`` at ``top_level``. Concurrency is bounded by the caller's semaphore: the
daemon's scheduler owns one, ``run_targets`` (the quickstart's rounds) creates one per round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
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


async def ladder_measurement(
    config: ProbeConfig, started: datetime | None = None
) -> tuple[dict[str, Any], bool, str]:
    started = started or datetime.now(UTC)
    observation = await connectivity.measure(config.ladder)
    online, sentence = connectivity.summarise(observation)
    keys = {**observation, "analysis": {"online": online, "summary": sentence}}
    identity = config.identity
    measurement = envelope(test_name="connectivity", input_=None, test_keys=keys,
                           started=started, runtime=0.0, cc=identity.country,
                           asn=identity.asn or "AS0", probe_id=identity.probe_id)
    return measurement, online, sentence


def check_budget(config: ProbeConfig) -> float:
    """Seconds one target may take at most: every phase's timeout, redirects included."""
    t = config.timeouts
    return t.dns + t.connect + t.tls + t.http * 11 + t.control


async def measure_target(
    config: ProbeConfig, target: Target, control: ControlClient, options: web.WebOptions,
    started: datetime | None = None,
) -> dict[str, Any]:
    """One web connectivity measurement of ``target``; never raises for a network outcome,
    and turns a bug into a measurement with ``unknown_failure`` at ``top_level``."""
    identity = config.identity
    started = started or datetime.now(UTC)
    try:
        async with asyncio.timeout(check_budget(config)):
            return await run_web_connectivity(
                target.url, options, control, cc=identity.country,
                asn=identity.asn or "AS0", network_name=identity.network_name,
                probe_id=identity.probe_id, started=started)
    except Exception as exc:
        log.exception("check of %s failed", target.url)
        keys = {"failure": failures.classify(exc), "operation": failures.OP_TOP_LEVEL,
                "analysis": {"verdict": "inconclusive", "layer": None,
                             "mechanism": None, "confidence": 0.0,
                             "evidence": ["top_level_failure"]}}
        return envelope(test_name="web_connectivity", input_=target.url,
                        test_keys=keys, started=started, runtime=0.0,
                        cc=identity.country, asn=identity.asn or "AS0",
                        probe_id=identity.probe_id)


def control_client(config: ProbeConfig) -> ControlClient:
    return ControlClient(config.control_base, timeout=config.timeouts.control,
                         ca_file=config.collector.ca_file)


async def run_targets(
    config: ProbeConfig, targets: tuple[Target, ...], progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Measure every target; returns measurements in completion order."""
    semaphore = asyncio.Semaphore(config.schedule.concurrency)
    control = control_client(config)
    options = web_options(config)
    done: list[dict[str, Any]] = []

    async def one(target: Target) -> None:
        async with semaphore:
            measurement = await measure_target(config, target, control, options)
            done.append(measurement)
            if progress:
                progress(len(done), len(targets), measurement)

    await asyncio.gather(*(one(t) for t in targets))
    return done
