"""The ``timeouts:`` section, shared by the probe config and the platforms file (its own
module so ``probe.config.platforms`` need not import the probe config, which loads it)."""

from __future__ import annotations

from dataclasses import dataclass

from probe.core.typed_config import duration_field, positive


@dataclass(frozen=True, slots=True)
class Timeouts:
    dns: float = duration_field(4.0, positive)
    connect: float = duration_field(10.0, positive)
    tls: float = duration_field(10.0, positive)
    http: float = duration_field(15.0, positive)
    control: float = duration_field(30.0, positive)
