"""Collector configuration: YAML -> frozen dataclasses with key-path errors.

With no file at all the collector starts on defaults: SQLite under ``./var/``, listening on
127.0.0.1:8080.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from collector.announce import AnnounceConfig, load_key
from collector.api.served_lists import ServedLists
from collector.detect.params import DetectionConfig
from collector.events.windows import load_calendar
from collector.limits import Limits
from collector.notify.config import Notifications
from collector.outside.config import OutsideConfig
from collector.outside.config import resolve as resolve_outside
from collector.store.archive_targets import S3Settings, parse_s3_url
from collector.vantage.sni_ab import SniAB
from probe.core.typed_config import (
    ConfigError,
    build,
    checked,
    duration_field,
    is_host_port,
    positive,
    read_yaml,
)


def _header_name(value: str | None) -> str | None:
    if value is None or (value and all(c.isalnum() or c == "-" for c in value)):
        return None
    return "not an HTTP header name"


def check_database(value: str) -> str | None:
    if value.startswith(("postgresql://", "postgres://")) or value.endswith((".sqlite", ".db")):
        return None
    return "not a postgresql:// DSN nor a path ending in .sqlite or .db"


def _resolver(value: str) -> str | None:
    return is_host_port(value if value.count(":") == 1 else f"{value}:53") and \
        f"not IP or IP:PORT: {value!r}"


@dataclass(frozen=True, slots=True)
class TargetListsConfig:
    """Target lists served to probes by ``GET /api/v1/targets`` (``collector.api.target_lists``)."""

    # Relative to the config file; null: GET /api/v1/targets answers 404.
    directory: str | None = None
    # The list every country gets, relative to the directory.
    global_list: str = "curated/global.csv"
    # List health (collector.api.list_health): an entry whose control fetches have all failed
    # over this many days is flagged for the operator.
    health_days: float = checked(7.0, positive)
    # How often the health of the lists is saved to the database (when it changed).
    health_save_interval: float = duration_field(60.0, positive)


def _workers(value: int | None) -> str | None:
    return None if value is None or value >= 0 else "0 or more (0: none; unset: one per CPU)"


def _commit_wait(value: float) -> str | None:
    return None if 0 <= value <= 1 else "from 0 to 1s (0: commit without waiting)"


@dataclass(frozen=True, slots=True)
class Ingest:
    # Worker processes that prepare large uploads (parse, validate, compress), each on its own
    # core: unset, one per CPU (at most 4); 0 prepares every upload on a thread of the
    # collector's own process (collector.api.ingest_workers).
    workers: int | None = checked(None, _workers)
    # Bodies smaller than this are prepared on a thread even with workers: the trip to a
    # process and back costs about what preparing a few measurements does.
    process_min_bytes: int = checked(64 * 1024, positive)
    # How long a store's writer may hold a commit for uploads still being prepared, to write
    # them in the same transaction (collector.store.coming); 0 commits each group at once.
    commit_wait: float = duration_field(0.025, _commit_wait)


@dataclass(frozen=True, slots=True)
class Query:
    max_page_size: int = checked(1000, positive)
    max_groups: int = checked(10000, positive)


@dataclass(frozen=True, slots=True)
class Auth:
    require_token: bool = True


@dataclass(frozen=True, slots=True)
class Control:
    timeout: float = duration_field(25.0, positive)
    # The control dials addresses named by probes; refusing private and loopback addresses
    # stops it from being used to scan the operator's own network. Tests and the lab allow them.
    allow_private_addresses: bool = False
    ca_file: str | None = None
    # A UDP resolver (IP or IP:PORT) to use instead of this host's system resolver, for an
    # operator whose system resolver is not a neutral outside view (and for the lab).
    resolver: str | None = checked(None, lambda v: v and _resolver(v))
    # Control measurements at once; more are answered 503 with Retry-After. Each costs at most
    # the probe client's limits (about 1 MiB), so this caps the control's memory too.
    max_concurrent: int = checked(8, positive)


def _s3_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_s3_url(value)
    except ValueError as exc:
        return str(exc)
    return None


def _archive_age(value: float | None) -> str | None:
    return None if value is None or value > 0 else "must be positive"


@dataclass(frozen=True, slots=True)
class Storage:
    # Full bodies of measurements that started longer ago than this move to daily archive
    # files under ``archive_dir`` (``python -m collector archive``); the summary rows and the
    # rollups stay. None (the default) keeps every body in the database.
    archive_after: float | None = duration_field(None, _archive_age)  # type: ignore[arg-type]
    # Relative to the working directory, like ``database``. Needed to read archived bodies
    # back, so it stays set once anything was archived.
    archive_dir: str = "var/archive"
    # An S3-compatible bucket instead of ``archive_dir``: ``s3://bucket/prefix``. Files keep
    # the same layout under the prefix. Needs the ``s3`` extra (boto3).
    archive_url: str | None = checked(None, _s3_url)
    # The S3 API's address (MinIO, Ceph, Garage, a cloud's S3 endpoint); None is AWS's.
    s3_endpoint: str | None = None
    s3_region: str | None = None
    # Credentials: the key id here and the secret in a file (relative to the config), or
    # neither and boto3's usual places (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile).
    s3_access_key_id: str | None = None
    s3_secret_access_key_file: str | None = None
    # Decoded archive members kept in memory for reads (MiB): a page of bodies from one day
    # then costs one GET from a bucket, one decompression from a directory.
    archive_cache_mb: int = checked(64, positive)

    @property
    def archive_cache_bytes(self) -> int:
        return self.archive_cache_mb * 1024 * 1024

    def s3_settings(self) -> S3Settings | None:
        """The bucket's settings for ``open_store``, or None when archives are local."""
        if self.archive_url is None:
            return None
        secret = None
        if self.s3_secret_access_key_file is not None:
            secret = Path(self.s3_secret_access_key_file).read_text(encoding="utf-8").strip()
        return S3Settings(self.archive_url, endpoint=self.s3_endpoint, region=self.s3_region,
                          access_key_id=self.s3_access_key_id, secret_access_key=secret,
                          cache_bytes=self.archive_cache_bytes)


def _countries(value: tuple[str, ...]) -> str | None:
    bad = [c for c in value if not (len(c) == 2 and c.isascii() and c.isalpha() and c.isupper())]
    return f"not a two-letter country code: {bad[0]!r}" if bad else None


@dataclass(frozen=True, slots=True)
class StatusPage:
    """The public pages (``collector.statuspage``) and feeds."""

    # Every country of the deployment gets a row, "no probes here" when none reports.
    countries: tuple[str, ...] = checked(("KG", "KZ"), _countries)
    # Extra CSV files naming networks (columns cc,asn,name,source), relative to the config;
    # they add to and override the shipped collector/events/data/asn_names.csv.
    asn_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadAPI:
    """The public read API (``/api/v1/measurements``, ``/api/v1/aggregation``)."""

    # A file holding the operator's read token: requests bearing it see real probe ids;
    # everyone else sees a salted hash (pseudonym) per probe. Relative to the config.
    operator_token_file: str | None = None


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    listen: str = checked("127.0.0.1:8080", is_host_port)
    database: str = checked("var/kuzot.sqlite", check_database)
    database_pool_size: int = checked(10, positive)
    public_url: str | None = None
    # MaxMind-format files (GeoLite2/GeoIP2 Country or ASN, or one file with both); when set,
    # the submitter's address decides a measurement's country and network.
    geoip_database: str | None = None
    geoip_asn_database: str | None = None
    # Behind a reverse proxy: the header whose last entry is the client's address.
    client_address_header: str | None = checked(None, _header_name)
    # Targets that may appear as metric labels; others are counted as target="other".
    target_files: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    # URL -> Citizen Lab category code, from target_files (filled at load, not a YAML key).
    target_categories: tuple[tuple[str, str], ...] = ()
    target_lists: TargetListsConfig = field(default_factory=TargetListsConfig)
    auth: Auth = field(default_factory=Auth)
    limits: Limits = field(default_factory=Limits)
    ingest: Ingest = field(default_factory=Ingest)
    query: Query = field(default_factory=Query)
    control: Control = field(default_factory=Control)
    notifications: Notifications = field(default_factory=Notifications)
    sni_ab: SniAB = field(default_factory=SniAB)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    # Signed endpoint announcements in heartbeat answers (collector.announce).
    announce: AnnounceConfig = field(default_factory=AnnounceConfig)
    status: StatusPage = field(default_factory=StatusPage)
    read_api: ReadAPI = field(default_factory=ReadAPI)
    outside: OutsideConfig = field(default_factory=OutsideConfig)
    storage: Storage = field(default_factory=Storage)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def status_url(self) -> str:
        """Base of the public status page, used in links in notifications."""
        return (self.public_url or f"http://{self.listen}").rstrip("/")


def load(path: str | Path | None) -> CollectorConfig:
    """Load a collector config; target files, GeoIP paths and the event-window calendar are
    relative to the file."""
    if path is None:
        return CollectorConfig()
    from probe.core.targets import load_targets_csv

    file = Path(path)
    config = build(CollectorConfig, read_yaml(file))
    targets = list(config.targets)
    categories: dict[str, str] = {}
    for index, name in enumerate(config.target_files):
        loaded = load_targets_csv(file.parent / name, f"target_files[{index}]")
        targets += [t.url for t in loaded]
        categories.update({t.url: t.category for t in loaded if t.category})
    changes: dict[str, object] = {"targets": tuple(dict.fromkeys(targets)),
                                  "target_categories": tuple(sorted(categories.items()))}
    names = []
    for index, name in enumerate(config.status.asn_names):
        resolved = file.parent / name
        if not resolved.is_file():
            raise ConfigError(f"status.asn_names[{index}]", f"no such file: {name}")
        names.append(str(resolved))
    changes["status"] = replace(config.status, asn_names=tuple(names))
    token_file = config.read_api.operator_token_file
    if token_file is not None:
        resolved = file.parent / token_file
        if not resolved.is_file():
            raise ConfigError("read_api.operator_token_file", f"no such file: {token_file}")
        changes["read_api"] = replace(config.read_api, operator_token_file=str(resolved))
    for key in ("geoip_database", "geoip_asn_database"):
        value = getattr(config, key)
        if value is not None:
            resolved = file.parent / value
            if not resolved.is_file():
                raise ConfigError(key, f"no such file: {value}")
            changes[key] = str(resolved)
    calendar = config.detection.event_windows
    if calendar is not None:
        # The calendar of event windows is checked now, so that a bad date fails at load
        # like any other key.
        resolved = (file.parent / calendar).resolve()
        try:
            load_calendar(resolved)
        except ConfigError as exc:
            raise ConfigError("detection.event_windows", f"{calendar}: {exc}") from exc
        changes["detection"] = replace(config.detection, event_windows=str(resolved))
    if config.announce.key_file is not None:
        # The key is read now, so a missing or wrong file fails at load, not at a heartbeat.
        key_file = str((file.parent / config.announce.key_file).resolve())
        load_key(key_file)
        changes["announce"] = replace(config.announce, key_file=key_file)
    secret_file = config.storage.s3_secret_access_key_file
    if secret_file is not None:
        resolved = file.parent / secret_file
        if not resolved.is_file():
            raise ConfigError("storage.s3_secret_access_key_file", f"no such file: {secret_file}")
        if config.storage.s3_access_key_id is None:
            raise ConfigError("storage.s3_access_key_id", "required with s3_secret_access_key_file")
        changes["storage"] = replace(config.storage, s3_secret_access_key_file=str(resolved))
    if config.outside.block_files or config.outside.opt_out_file:
        changes["outside"] = resolve_outside(config.outside, file.parent)
    lists = config.target_lists
    if lists.directory is not None:
        # Served lists are checked now too; later edits that do not load are logged and the
        # last good version stays in service.
        directory = (file.parent / lists.directory).resolve()
        if not directory.is_dir():
            raise ConfigError("target_lists.directory", f"no such directory: {lists.directory}")
        try:
            ServedLists(directory, lists.global_list).check()
        except ConfigError as exc:
            raise ConfigError("target_lists", str(exc)) from exc
        changes["target_lists"] = replace(lists, directory=str(directory))
    return replace(config, **changes)  # type: ignore[arg-type]
