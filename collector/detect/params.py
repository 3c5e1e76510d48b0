"""Detection parameters: the ``detection:`` section of the collector config.

Every default carries its source. "ref §x" is the project's detection study (IODA, OONI,
Trinocular, CenDTect, Wehe numbers), the same numbers the README's configuration table lists.
Where Kuzot departs from a published number the comment says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from collector.detect.outside import OutsideParams
from probe.core.typed_config import checked, duration_field, is_asn, positive


def _share(value: Any) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


def _probability(value: Any) -> str | None:
    return None if 0 < value < 1 else "must be in (0, 1)"


def _ratio(value: Any) -> str | None:
    return None if value > 1 else "must be greater than 1"


def _asns(value: tuple[str, ...]) -> str | None:
    for item in value:
        if is_asn(item):
            return f"not an ASN like AS1234: {item!r}"
    return None


@dataclass(frozen=True, slots=True)
class NetworkRoles:
    """Which ASNs of a country are the incumbent and which are mobile operators.

    A shutdown is *national* when >= 2 ASNs including the incumbent go dark within
    ``silence.join_window`` (ref §6.2); it is *mobile* when every affected ASN is mobile
    (Kazakhstan, January 2022, began on Kcell, Beeline and Tele2).
    """

    incumbent: tuple[str, ...] = checked((), _asns)
    mobile: tuple[str, ...] = checked((), _asns)


@dataclass(frozen=True, slots=True)
class TierParams:
    """Evidence tiers (design §5, ref §6.1).

    ``likely`` needs ``min_probes`` distinct healthy probes, or ``small_share`` of the ASN's
    active probes when it has fewer than ``small_asn``, for ``persistence`` consecutive bins.
    ``floor`` is Kuzot's addition: no rule is met by fewer probes than this, because one probe
    cannot be told apart from one broken probe (a one-probe ASN stays ``suspected``).
    """

    min_probes: int = checked(3, positive)
    small_asn: int = checked(6, positive)
    small_share: float = checked(0.5, _share)
    floor: int = checked(2, positive)
    persistence: int = checked(2, positive)
    exit_bins: int = checked(2, positive)  # hysteresis: 2 clean bins to close (ref §6.5, IODA)

    def likely_probes(self, active: int) -> int:
        """Distinct probes ``likely`` needs in a network with ``active`` probes."""
        needed = self.min_probes
        if active < self.small_asn:
            needed = min(needed, math.ceil(self.small_share * active))
        return max(self.floor, needed)


@dataclass(frozen=True, slots=True)
class SilenceParams:
    """Heartbeat silence: a binomial tail against each probe's own miss history (ref §6.2)."""

    heartbeat_interval: float = duration_field(60.0, positive)  # ref §6.2: HTTPS every 60 s
    grace: float = duration_field(10.0)  # jitter and latency tolerated before a miss counts
    alpha: float = checked(1e-4, _probability)  # ref §6.2: P(X >= silent) < 1e-4
    onset_spread: float = duration_field(120.0, positive)  # silences must begin together
    bin: float = duration_field(15.0, positive)  # persistence unit: fired 15 s earlier too
    history: float = duration_field(7 * 86400.0, positive)  # ref §6.2: own 7-day history
    prior_miss_rate: float = checked(0.05, _probability)  # ref §6.2: typically 0.02-0.05
    prior_weight: float = duration_field(86400.0, positive)  # the prior counts as one day
    active_window: float = duration_field(86400.0, positive)  # probes heard from in a day
    join_window: float = duration_field(1800.0, positive)  # ref §6.2: ASNs within 30 min
    blind_share: float = checked(0.9, _share)  # most of the fleet silent = our own outage
    backfill: float = duration_field(3600.0, positive)  # how far the ladder may move a start


@dataclass(frozen=True, slots=True)
class BlockParams:
    """Per (ASN, target, bin) blocking (ref §6.3) and its clustering (CenDTect's lesson)."""

    # Runs are gathered in bins of ``bin`` and judged ``settle`` after the bin ends (a round's
    # stragglers). Persistence is counted in each probe's own rounds, not in bins (ref §6.3's
    # 1-hour bin is its watch-list cadence), so the bin only sets how soon data is looked at.
    bin: float = duration_field(300.0, positive)
    settle: float = duration_field(120.0)
    wilson_z: float = checked(1.96, positive)  # 95% interval (ref §6.3)
    likely_share: float = checked(0.5, _share)  # Wilson lower bound of blocked share (ref §6.3)
    hot_share: float = checked(0.5, _share)  # share of probes' latest runs that opens an episode
    exit_share: float = checked(0.1, _share)  # ends at or below, over two rounds (ref §6.5)
    health_min_ok: int = checked(3, positive)  # ref §6.5: >= 3 canaries answering
    # A probe that came back from a blocked round (blocked, then ok) within ``flap_window``
    # shows a partial failure (a CDN failing some runs at random), not a block; while one does,
    # a probe counts as persistently blocked for ``likely`` only once its blocked rounds have
    # lasted ``flap_hold``. Kuzot's own numbers: see the block detector.
    flap_window: float = duration_field(3600.0, positive)
    flap_hold: float = duration_field(1800.0)
    cluster_window: float = duration_field(7200.0, positive)  # ref §6.3: start within 2 h
    national_window: float = duration_field(6 * 3600.0, positive)  # ref §6.3: >= 2 ASNs in 6 h
    known_mitm_issuers: tuple[str, ...] = ("Qaznet Trust Network",)  # KZ 2019 (ref §4.4)


@dataclass(frozen=True, slots=True)
class CollapseParams:
    """All-target collapse: a network where probes fail nearly everything at once."""

    probe_failed_share: float = checked(0.8, _share)  # a probe has collapsed at this share
    min_targets: int = checked(5, positive)  # targets a probe must have tried in the bin
    network_share: float = checked(0.5, _share)  # share of reporting probes collapsed
    exit_share: float = checked(0.1, _share)


@dataclass(frozen=True, slots=True)
class ThrottleParams:
    """Throttling: slowdown ratios against co-hosted baselines and own history (ref §6.4)."""

    warn_ratio: float = checked(3.0, _ratio)  # ref §6.4: median R >= 3 warning
    extreme_ratio: float = checked(10.0, _ratio)  # OONI dd-007: >= 10x is "extreme"
    exit_ratio: float = checked(1.5, _ratio)  # a bin is clean at or below this median ratio
    exit_share: float = checked(0.1, _share)  # ... and at most this share of throttled runs
    min_runs: int = checked(6, positive)  # ref §6.4: >= 3 probes and >= 6 runs
    generalized_ratio: float = checked(1.5, _ratio)  # ref §6.4: slower by >= 50%
    generalized_share: float = checked(0.5, _share)  # ref §6.4: >= 50% of the ASN's probes
    generalized_exit_share: float = checked(0.25, _share)  # clean when fewer are slow
    baseline_window: float = duration_field(7 * 86400.0, positive)  # 7-day same-hour median
    baseline_min_points: int = checked(3, positive)
    inpaint_low: float = checked(0.8, positive)  # IODA watchtower inpainting band
    inpaint_high: float = checked(2.0, positive)
    inpaint_max: float = duration_field(7 * 86400.0, positive)  # then the level is "normal"
    cluster_window: float = duration_field(7200.0, positive)


@dataclass(frozen=True, slots=True)
class ReachParams:
    """The monitor blocked from a network (``monitor_reach``): how fresh a heartbeat's path
    must be, the share of a network's probes cut off, and how long before it recovers."""

    window: float = duration_field(1800.0, positive)
    min_share: float = checked(0.5, _share)
    exit_after: float = duration_field(1800.0, positive)


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """The ``detection:`` section of the collector config."""

    enabled: bool = True
    interval: float = duration_field(30.0, positive)  # how often the pipeline runs
    state_every: float = duration_field(300.0, positive)  # how often its state is saved
    event_windows: str | None = None  # calendar file (configs/events.yaml), relative to config
    stale_after: float = duration_field(86400.0, positive)  # close members without data
    canaries: tuple[str, ...] = ()  # inputs that count for probe health; empty = any target
    networks: dict[str, NetworkRoles] = field(default_factory=dict)
    tiers: TierParams = field(default_factory=TierParams)
    silence: SilenceParams = field(default_factory=SilenceParams)
    block: BlockParams = field(default_factory=BlockParams)
    collapse: CollapseParams = field(default_factory=CollapseParams)
    throttle: ThrottleParams = field(default_factory=ThrottleParams)
    outside: OutsideParams = field(default_factory=OutsideParams)  # outside-in corroboration
    reach: ReachParams = field(default_factory=ReachParams)  # the monitor blocked from a network
