"""The ``throttling:`` section of the probe config (kept apart so the loader stays small).

Defaults keep the data use modest: a round is at most
``targets_with_baseline * (2 * repetitions + 2 * ab_repetitions) * max_bytes_per_transfer``
bytes (6 MiB per target with the defaults), at most once per ``interval``, and never more than
``daily_budget_bytes`` a day nor more than is left of the day's whole budget (``budget.daily_mb``).
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.core.typed_config import checked, duration_field, positive


@dataclass(frozen=True, slots=True)
class ThrottlingConfig:
    enabled: bool = False
    interval: float = duration_field(6 * 3600.0, positive)
    repetitions: int = checked(3, positive)
    sni_ab: bool = True
    ab_repetitions: int = checked(3, positive)
    innocuous_sni: str | None = None
    max_bytes_per_transfer: int = checked(512 * 1024, positive)
    transfer_timeout: float = duration_field(8.0, positive)
    daily_budget_bytes: int = checked(100 * 1000 * 1000, positive)
    # Where probes before the one budget kept the throttling count: read once into the local
    # database at start, then renamed ``.migrated`` (``probe.daemon.budget.migrate_file``).
    budget_file: str = "var/throttle-budget.json"
