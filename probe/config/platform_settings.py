"""The ``platforms:`` and ``censor_trace:`` sections of the probe config (kept apart so the
loader stays small).

Platform checks (Telegram, WhatsApp, Signal, Messenger, YouTube, TikTok, Instagram, X) run as
daemon jobs, each platform on its own cadence, from the endpoint lists of a platforms file
(``configs/platforms.yaml``). A censor trace is a follow-up, never a routine: it runs only
with CAP_NET_RAW, only for a URL whose latest measurement was blocked at the TLS or HTTP layer
(the name in the request is what the trace varies), at most once per ``interval`` per URL and
``daily_max`` times per UTC day, because each trace sends the blocked name again a few dozen
times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from probe.config.platforms import PLATFORMS
from probe.core.typed_config import checked, duration_field, positive

_HOST_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")


def _known_platforms(value: tuple[str, ...]) -> str | None:
    for name in value:
        if name not in PLATFORMS:
            return f"unknown platform {name!r} (known: {', '.join(PLATFORMS)})"
    if len(set(value)) != len(value):
        return "names a platform twice"
    return None


def _ttl(value: Any) -> str | None:
    return None if 1 <= value <= 64 else "must be in 1..64"


def _host_name(value: Any) -> str | None:
    return None if _HOST_NAME.match(value) else "not a host name like example.com"


@dataclass(frozen=True, slots=True)
class PlatformChecks:
    """``file`` null means no platform checks. ``names`` empty means every platform in the
    file. ``interval`` is divided by ``schedule.event_speedup`` inside event windows, and
    jittered by ``schedule.jitter``, like a site's. ``fingerprint`` compares a reset's IP
    header with the server's (only with CAP_NET_RAW; otherwise recorded as
    ``permission_denied``)."""

    file: str | None = None
    names: tuple[str, ...] = checked((), _known_platforms)
    interval: float = duration_field(1800.0, positive)
    fingerprint: bool = True


@dataclass(frozen=True, slots=True)
class CensorTraces:
    """When the daemon may locate a censor (test ``censor_trace``); see the module docstring.
    ``max_ttl``, ``step_timeout`` and ``control_name`` are those of ``probe trace``."""

    enabled: bool = True
    interval: float = duration_field(6 * 3600.0, positive)
    daily_max: int = checked(12, positive)
    max_ttl: int = checked(30, _ttl)
    step_timeout: float = duration_field(1.0, positive)
    control_name: str = checked("example.com", _host_name)
