"""Measuring: the connectivity ladder, one target, one platform, one censor trace, or a round
of every target.

``measure_target`` is the unit both the daemon's scheduler and the quickstart's rounds use;
``measure_platform`` and ``measure_trace`` are the daemon's platform and trace jobs. A check
that raises (a bug, not a network failure) is turned into a measurement with
``unknown_failure`` at ``top_level``; a check that overruns every timeout it was given is cut
by a budget computed from them. Concurrency is bounded by the caller's semaphore: the
daemon's scheduler owns one, ``run_targets`` (the quickstart's rounds) creates one per round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from probe.config.platforms import PlatformsConfig
from probe.config.probe_config import ProbeConfig, Target
from probe.core import failures
from probe.core.evidence import flag, written
from probe.core.measurement import envelope
from probe.daemon.endpoints import Endpoint, EndpointList, configured
from probe.nettests.censor_trace import measure as censor_trace
from probe.nettests.connectivity import ladder as connectivity
from probe.nettests.control_client import ControlClient
from probe.nettests.platforms import measure as platforms
from probe.nettests.platforms import run as platform_test
from probe.nettests.web_connectivity import measure as web
from probe.nettests.web_connectivity.run import run_web_connectivity

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
        return failed_measurement(config, "web_connectivity", target.url, exc, started)


def failed_measurement(config: ProbeConfig, test_name: str, input_: str | None,
                       exc: BaseException, started: datetime) -> dict[str, Any]:
    """The measurement of a check that raised or overran its budget: what it was, when, and
    the failure at ``top_level``, with an inconclusive verdict."""
    identity = config.identity
    keys = {"failure": failures.classify(exc), "operation": failures.OP_TOP_LEVEL,
            "analysis": written({"verdict": "inconclusive", "layer": None,
                                 "mechanism": None, "confidence": 0.0,
                                 "evidence": [flag("top_level_failure")]})}
    return envelope(test_name=test_name, input_=input_, test_keys=keys, started=started,
                    runtime=0.0, cc=identity.country, asn=identity.asn or "AS0",
                    probe_id=identity.probe_id)


def platform_budget(config: PlatformsConfig, name: str) -> float:
    """Seconds one platform check may take at most: every endpoint within a web check's
    timeouts, one after another, then one reset fingerprint per endpoint. A safety net
    against a check that hangs: endpoints share measurement slots, so a check that merely
    waits its turn behind slow sites must never be cut."""
    t = config.timeouts
    groups = config.platforms[name].groups.values()
    count = sum(len(g.urls) + len(g.hosts) * config.max_addresses * len(g.ports)
                + len(g.addresses) * len(g.ports) for g in groups)
    per_endpoint = t.dns + t.connect + t.tls + t.http * 11 + t.control
    return (per_endpoint + 2 * t.connect) * count


async def measure_platform(
    config: ProbeConfig, endpoints: PlatformsConfig, name: str, control: ControlClient,
    options: platforms.PlatformOptions, started: datetime | None = None,
    slots: asyncio.Semaphore | None = None,
) -> dict[str, Any]:
    """One platform check (test ``telegram``, ..., or ``platform`` with the name as input);
    each endpoint holds one of ``slots`` while it is measured."""
    identity = config.identity
    started = started or datetime.now(UTC)
    try:
        async with asyncio.timeout(platform_budget(endpoints, name)):
            return await platform_test.run_platform(
                name, endpoints, options, control, cc=identity.country,
                asn=identity.asn or "AS0", network_name=identity.network_name,
                probe_id=identity.probe_id, started=started, slots=slots)
    except Exception as exc:
        log.exception("check of platform %s failed", name)
        test_name = platform_test.test_name_of(name)
        return failed_measurement(config, test_name, None if test_name == name else name,
                                  exc, started)


def trace_options(config: ProbeConfig, address: str | None) -> censor_trace.TraceOptions:
    settings, t = config.censor_trace, config.timeouts
    return censor_trace.TraceOptions(address=address, control_name=settings.control_name,
                                     max_ttl=settings.max_ttl,
                                     step_timeout=settings.step_timeout,
                                     connect_timeout=t.connect, dns_timeout=t.dns)


def trace_budget(options: censor_trace.TraceOptions) -> float:
    """Seconds one trace may take at most: two passes of ``max_ttl`` steps, each a connect,
    a wait for the SYN-ACK's copy (0.5 s), a wait for the answer and a settling pause (0.2 s)."""
    step = options.connect_timeout + 0.5 + options.step_timeout + 0.2
    return options.dns_timeout + 2 * options.max_ttl * step


async def measure_trace(config: ProbeConfig, url: str, address: str | None,
                        started: datetime | None = None) -> dict[str, Any]:
    """One censor trace of ``url`` (test ``censor_trace``)."""
    identity = config.identity
    started = started or datetime.now(UTC)
    options = trace_options(config, address)
    try:
        async with asyncio.timeout(trace_budget(options)):
            return await platform_test.run_trace(
                url, options, cc=identity.country, asn=identity.asn or "AS0",
                probe_id=identity.probe_id, started=started)
    except Exception as exc:
        log.exception("censor trace of %s failed", url)
        return failed_measurement(config, "censor_trace", url, exc, started)


def control_client(config: ProbeConfig) -> ControlClient:
    """The controls in order: ``controls``, else ``control_url``, else the collector's own
    endpoints (the collector is the control vantage); through ``collector.proxy`` if set."""
    link = config.collector
    if config.controls:
        endpoints: tuple[Endpoint, ...] = config.controls
    elif config.control_url:
        endpoints = (Endpoint(name="control", url=config.control_url),)
    else:
        endpoints = configured(link.url, link.endpoints)
    return ControlClient(timeout=config.timeouts.control, ca_file=link.ca_file,
                         endpoints=EndpointList(endpoints, link.retry_first_after),
                         proxy=link.proxy)


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
