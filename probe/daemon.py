"""``python -m probe run``: measure every target each interval and upload the results.

This is the simple daemon of the walking skeleton: rounds on a fixed interval with jitter,
uploads after each round, keeps what could not be uploaded in memory for the next round.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any

from probe import config as probe_config
from probe.round import ladder_measurement, run_targets
from probe.throttle_test import run_throttling_round
from probe.uploader import Uploader, UploadError

log = logging.getLogger(__name__)


def read_token(config: probe_config.ProbeConfig, base: Path) -> str | None:
    if config.collector.token:
        return config.collector.token
    if config.collector.token_file:
        path = Path(config.collector.token_file)
        path = path if path.is_absolute() else base / path
        try:
            return path.read_text().strip() or None
        except OSError:
            return None
    return None


async def one_round(config: probe_config.ProbeConfig, uploader: Uploader,
                    pending: list[dict[str, Any]]) -> tuple[bool, str]:
    ladder, online, sentence = await ladder_measurement(config)
    pending.append(ladder)
    if online:
        pending.extend(await run_targets(config, config.targets))
        pending.extend(await run_throttling_round(config))
    while pending:
        batch = pending[: config.collector.upload_batch]
        try:
            stored = set(await uploader.upload(batch))
        except UploadError as exc:
            if exc.permanent:
                log.error("collector rejected a batch, dropping it: %s", exc)
                del pending[: len(batch)]
                continue
            log.warning("upload failed, keeping %d measurements: %s", len(pending), exc)
            break
        pending[:] = [m for m in pending if m["measurement_uid"] not in stored]
    return online, sentence


async def run_daemon(config_path: str, once: bool = False) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = probe_config.load(config_path)
    token = read_token(config, Path.cwd())
    uploader = Uploader(config.collector.url, token, config.collector.ca_file)
    pending: list[dict[str, Any]] = []
    while True:
        online, sentence = await one_round(config, uploader, pending)
        log.info("round done: %s; %d measurements waiting for upload", sentence, len(pending))
        if once:
            return 0
        jitter = config.schedule.jitter * config.schedule.interval
        await asyncio.sleep(config.schedule.interval + random.uniform(-jitter, jitter))
