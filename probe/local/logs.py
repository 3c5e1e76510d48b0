"""Logging for the daemon that cannot leak who the volunteer is.

Logs end up in journald, in bug reports and in screenshots. Every record therefore passes a
filter that replaces every IP address (any address, not only the probe's own: a log line has
no need for them) and every configured secret (the collector token) before it is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from probe.core.scrub import scrub_ips

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ScrubbingFilter(logging.Filter):
    """Rewrites each record's message with addresses and secrets removed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self._clean(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        return scrub_ips(text)


def setup(level: str = "info", secrets: Iterable[str] = (),
          stream: TextIO | None = None) -> logging.Handler:
    """Send the probe's logs to ``stream`` (stderr: journald under systemd) through the
    scrubbing filter; returns the handler so callers (tests) can remove it again."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(ScrubbingFilter(secrets))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access and client loggers may print peer addresses; the filter scrubs them,
    # but they are noise for a volunteer at the default level anyway.
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, root.level))
    return handler
