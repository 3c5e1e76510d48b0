"""Run the throttling test end to end and wrap it in the measurement envelope.

``run_throttling`` measures one target (the CLI's ``python -m probe throttle``);
``run_throttling_round`` is what the daemon calls each round: it measures every configured
target that names a co-hosted baseline, at most once per ``throttling.interval`` and within the
throttling tests' allowance of the day's data budget (``probe.daemon.budget``).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

from probe.config.probe_config import ProbeConfig
from probe.core import failures
from probe.core.evidence import flag, written
from probe.core.measurement import envelope
from probe.daemon.budget import ByteBudget
from probe.nettests.throttling import measure as throttle
from probe.nettests.throttling.sni_ab import fetch_endpoint

log = logging.getLogger(__name__)


async def run_throttling(
    target_url: str,
    baseline_url: str | None,
    options: throttle.ThrottleOptions,
    sni_ab_base: str | None = None,
    *,
    budget: ByteBudget | None = None,
    cc: str = "ZZ",
    asn: str = "AS0",
    network_name: str | None = None,
    probe_id: str | None = None,
    ab_ca_file: str | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """One ``throttling`` measurement; ``sni_ab_base`` is the collector's base URL."""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    endpoint, ab_failure = None, None
    if sni_ab_base:
        endpoint, ab_failure = await fetch_endpoint(sni_ab_base, options.connect_timeout,
                                                    ab_ca_file)
    keys = await throttle.measure(target_url, baseline_url, options, endpoint, ab_failure,
                                  budget=budget, rng=rng)
    return envelope(
        test_name="throttling", input_=target_url, test_keys=keys, started=started,
        runtime=time.monotonic() - t0, cc=cc, asn=asn, network_name=network_name,
        probe_id=probe_id,
    )


def options_from(config: ProbeConfig) -> throttle.ThrottleOptions:
    settings, timeouts = config.throttling, config.timeouts
    return throttle.ThrottleOptions(
        repetitions=settings.repetitions, ab_repetitions=settings.ab_repetitions,
        byte_limit=settings.max_bytes_per_transfer, transfer_timeout=settings.transfer_timeout,
        connect_timeout=timeouts.connect, tls_timeout=timeouts.tls, dns_timeout=timeouts.dns,
        ca_file=config.ca_file, innocuous_sni=settings.innocuous_sni)


async def run_throttling_round(config: ProbeConfig, budget: ByteBudget
                               ) -> list[dict[str, Any]]:
    """Throttling measurements for targets with a baseline, when due and within budget."""
    settings = config.throttling
    if not settings.enabled:
        return []
    if not await budget.due(settings.interval):
        return []
    await budget.mark_round()
    options = options_from(config)
    identity = config.identity
    out = []
    for target in config.targets:
        if target.role != "test" or not target.baseline:
            continue
        if not await budget.allows(options.byte_limit):
            log.info("throttling: daily byte budget spent, %d bytes left",
                     await budget.remaining())
            break
        try:
            measurement = await run_throttling(
                target.url, target.baseline, options,
                config.control_base if settings.sni_ab else None, budget=budget,
                cc=identity.country, asn=identity.asn or "AS0",
                network_name=identity.network_name, probe_id=identity.probe_id,
                ab_ca_file=config.collector.ca_file)
        except Exception as exc:  # a bug, not a network outcome: keep the round going
            log.exception("throttling test of %s failed", target.url)
            keys = {"failure": failures.classify(exc), "operation": failures.OP_TOP_LEVEL,
                    "analysis": written({
                        "verdict": "inconclusive", "layer": None, "mechanism": None,
                        "confidence": 0.0, "evidence": [flag("top_level_failure")]})}
            measurement = envelope(test_name="throttling", input_=target.url, test_keys=keys,
                                   started=datetime.now(UTC), runtime=0.0, cc=identity.country,
                                   asn=identity.asn or "AS0", probe_id=identity.probe_id)
        out.append(measurement)
    return out
