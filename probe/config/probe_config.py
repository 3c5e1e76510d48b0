"""Probe configuration: YAML -> frozen dataclasses, defaults first, errors with the key path.

Target lists may live in CSV files (``target_files``), resolved relative to the config file,
so curated country lists can be updated without touching the probe config. A file is either in
the project's format (``url,category,cc,role,...``) or in Citizen Lab's test-list format, told
apart by its header.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from probe.config import platforms as platform_config
from probe.config.platform_settings import CensorTraces, PlatformChecks
from probe.config.probe_timeouts import Timeouts as Timeouts
from probe.config.throttle_settings import ThrottlingConfig
from probe.core.announcement import check_public_key
from probe.core.targets import CSV_COLUMNS as CSV_COLUMNS
from probe.core.targets import Target as Target
from probe.core.targets import load_targets_csv as load_targets_csv
from probe.core.targets import optional_positive
from probe.core.typed_config import (
    ConfigError,
    build,
    checked,
    duration_field,
    is_asn,
    is_country_code,
    is_host_port,
    is_http_url,
    positive,
    read_yaml,
)
from probe.daemon.clock_check import ClockSettings
from probe.daemon.endpoints import Endpoint
from probe.nettests.connectivity.ladder import LadderConfig
from probe.nettests.tcp_reachability.settings import TcpReachability
from probe.netx.proxy import check_proxy


def _resolvers(value: tuple[str, ...]) -> str | None:
    for item in value:
        if is_host_port(item if item.count(":") == 1 else f"{item}:53"):
            return f"not IP or IP:PORT: {item!r}"
    return None


def _doh_resolvers(value: tuple[str, ...]) -> str | None:
    for item in value:
        if is_http_url(item) or not item.startswith("https://"):
            return f"not an https URL: {item!r}"
    return None


def _jitter(value: float) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


@dataclass(frozen=True, slots=True)
class Identity:
    probe_id: str = "local"
    country: str = checked("ZZ", is_country_code)
    asn: str | None = checked(None, is_asn)
    network_name: str | None = None


def _unique_names(value: tuple[Endpoint, ...]) -> str | None:
    names = [e.name for e in value]
    return None if len(set(names)) == len(names) else "endpoint names must be unique"


@dataclass(frozen=True, slots=True)
class CollectorLink:
    url: str = checked("http://127.0.0.1:8080", is_http_url)
    token: str | None = None
    token_file: str | None = None
    ca_file: str | None = None
    upload_batch: int = checked(100, positive)
    # Ordered fallbacks (probe.daemon.endpoints); empty means just ``url``, named "primary".
    endpoints: tuple[Endpoint, ...] = checked((), _unique_names)
    retry_first_after: float = duration_field(3600.0, positive)
    # A proxy for everything sent to the collector (uploads, heartbeats, target lists,
    # control requests): http://HOST:PORT (CONNECT), socks5h://HOST:PORT (SOCKS5, names
    # resolved by the proxy: Tor) or socks5://HOST:PORT (probe.netx.proxy); null: direct.
    proxy: str | None = checked(None, lambda v: v and check_proxy(v))
    # The collector operator's Ed25519 public key (base64 of the raw 32 bytes, given at
    # ``init``): heartbeat answers announcing new endpoints signed with it are believed
    # (probe.daemon.announce); null: announcements are ignored.
    announce_key: str | None = checked(None, lambda v: v and check_public_key(v))


def _at_least_one(value: float) -> str | None:
    return None if value >= 1 else "must be at least 1"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Cadence of the daemon. ``interval`` is the default per-target cadence; inside an event
    window told by the collector every target interval is divided by ``event_speedup``."""

    interval: float = duration_field(300.0, positive)
    jitter: float = checked(0.2, _jitter)
    concurrency: int = checked(8, positive)
    ladder_interval: float = duration_field(300.0, positive)
    offline_ladder_interval: float = duration_field(60.0, positive)
    heartbeat_interval: float = duration_field(60.0, positive)
    event_heartbeat_interval: float = duration_field(30.0, positive)
    event_speedup: float = checked(4.0, _at_least_one)
    upload_interval: float = duration_field(60.0, positive)
    retry_min: float = duration_field(30.0, positive)
    retry_max: float = duration_field(900.0, positive)


@dataclass(frozen=True, slots=True)
class Budget:
    """Data the probe may use per UTC day (measurements, uploads, heartbeats); null = no cap."""

    daily_mb: float | None = checked(100.0, optional_positive)


@dataclass(frozen=True, slots=True)
class Consent:
    """Written by ``python -m probe init`` once the volunteer has read the notice and agreed."""

    accepted: bool = False
    notice_version: int = 0
    accepted_at: str | None = None


@dataclass(frozen=True, slots=True)
class TargetSync:
    """Target lists from the collector (``probe.config.target_sync``): fetched when ``probe run``
    starts, the last good copy kept in ``cache_file``; until the first good answer the probe
    measures its ``target_files``."""

    enabled: bool = True
    cache_file: str | None = None  # default: targets-cache.json beside the spool
    timeout: float = duration_field(10.0, positive)
    max_bytes: int = checked(4 * 1024 * 1024, positive)


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    identity: Identity = field(default_factory=Identity)
    collector: CollectorLink = field(default_factory=CollectorLink)
    control_url: str | None = checked(None, lambda v: v and is_http_url(v))
    # Ordered control endpoints (probe.nettests.control_client fails over among them, as uploads do
    # among collector.endpoints); empty: control_url, else the collector's endpoints.
    controls: tuple[Endpoint, ...] = checked((), _unique_names)
    resolvers: tuple[str, ...] = checked((), _resolvers)
    doh_resolvers: tuple[str, ...] = checked((), _doh_resolvers)
    ca_file: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    schedule: Schedule = field(default_factory=Schedule)
    target_files: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()
    target_sync: TargetSync = field(default_factory=TargetSync)
    spool_path: str = "var/probe-spool.sqlite"
    spool_max_mb: float = checked(100.0, positive)
    ladder: LadderConfig = field(default_factory=LadderConfig)
    throttling: ThrottlingConfig = field(default_factory=ThrottlingConfig)
    platforms: PlatformChecks = field(default_factory=PlatformChecks)
    censor_trace: CensorTraces = field(default_factory=CensorTraces)
    tcp_reachability: TcpReachability = field(default_factory=TcpReachability)
    clock: ClockSettings = field(default_factory=ClockSettings)
    budget: Budget = field(default_factory=Budget)
    consent: Consent = field(default_factory=Consent)
    metrics_listen: str | None = checked(None, lambda v: v and is_host_port(v))
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @property
    def control_base(self) -> str:
        return self.control_url or self.collector.url


def check_platforms_file(settings: PlatformChecks, base: Path) -> PlatformChecks:
    """``settings`` with its file made absolute, once the file has loaded and names every
    platform of ``names``; errors name ``platforms.file`` and the file's own key path."""
    if settings.file is None:
        return settings
    file = base / settings.file
    try:
        loaded = platform_config.load(file)
    except ConfigError as exc:
        raise ConfigError("platforms.file", f"{settings.file}: {exc}") from exc
    for index, name in enumerate(settings.names):
        if name not in loaded.platforms:
            raise ConfigError(f"platforms.names[{index}]", f"{name} is not in {settings.file}")
    if not loaded.platforms:
        raise ConfigError("platforms.file", f"{settings.file} lists no platform")
    return replace(settings, file=str(file.resolve()))


def load(path: str | Path) -> ProbeConfig:
    """Load a probe config file, the CSV target lists and the platforms file it names."""
    file = Path(path)
    config = build(ProbeConfig, read_yaml(file))
    targets = list(config.targets)
    for index, name in enumerate(config.target_files):
        targets.extend(load_targets_csv(file.parent / name, f"target_files[{index}]"))
    if config.target_sync.enabled and config.identity.country != "ZZ":
        from probe.config import target_sync  # aiohttp: loaded only when lists are synced

        served = target_sync.cached_targets(config)
        if served is not None:  # the collector's lists replace the files, not inline targets
            targets = [*config.targets, *served]
    if config.identity.country != "ZZ":
        targets = [t for t in targets if t.cc in ("*", config.identity.country)]
    # A URL listed twice (a country list and the global one) is measured once, as its first
    # entry says: the country list comes first in the shipped configs.
    first: dict[str, Target] = {}
    for target in targets:
        first.setdefault(target.url, target)
    return replace(config, targets=tuple(first.values()),
                   platforms=check_platforms_file(config.platforms, file.parent))
