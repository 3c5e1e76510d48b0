"""The storage interface: the ``Store`` protocol and the records and filters that cross it.

A leaf of ``collector.store``: the stores (``sqlite``, ``postgres``, their event halves, the
shared ``sql``, the ``archive`` reader) import it, and the package's ``__init__`` re-exports it
beside the factory (``open_store``), which imports the stores, so the factory and the stores
never import each other. See the package's docstring for the contract every store keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collector.store.archive import ArchiveCandidate
    from collector.store.archive_targets import ArchiveTarget

VERDICTS = ("ok", "blocked", "down", "throttled", "inconclusive")
AXES = ("day", "hour", "cc", "asn", "domain", "input", "test_name", "verdict")
Axis = Literal["day", "hour", "cc", "asn", "domain", "input", "test_name", "verdict"]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class StoreUnavailable(Exception):
    """The database cannot be reached or written right now; the client should retry."""


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    """Columns extracted from a validated measurement; ``body`` is the JSON document.

    ``probe_cc``/``probe_asn`` are the effective location: from the GeoIP database when one is
    configured and knows the submitter's address (``location_source="geoip"``), else the probe's
    declared values. ``location_mismatch`` records that the two disagreed.

    ``packed`` is ``body`` in its stored form (``collector.store.body.pack``) when the caller
    already compressed it off the event loop (validation does, on its worker thread); a store
    packs a row that comes without it.

    ``observation`` is what detection makes of the document (``collector.detect.observed``),
    extracted at ingest from the document already parsed and stored beside the row so that
    detection need not decompress and parse the body; None stores none (detection then reads
    the body, as for rows stored before it existed).
    """

    uid: str
    probe_id: str
    test_name: str
    input: str | None
    probe_cc: str
    probe_asn: str
    start_time: str
    received_at: str
    verdict: str | None
    layer: str | None
    mechanism: str | None
    body: str
    location_source: str = "declared"
    location_mismatch: bool = False
    packed: bytes | None = field(default=None, compare=False, repr=False)
    observation: str | None = field(default=None, compare=False, repr=False)

    @property
    def domain(self) -> str | None:
        return domain_of(self.input)

    def __reduce__(self) -> tuple[type[StoredMeasurement], tuple[Any, ...]]:
        # Rows come back from the ingest's worker processes by pickle; the dataclass's own
        # state methods look up its fields for every row, this passes them in order.
        return (StoredMeasurement, (
            self.uid, self.probe_id, self.test_name, self.input, self.probe_cc,
            self.probe_asn, self.start_time, self.received_at, self.verdict, self.layer,
            self.mechanism, self.body, self.location_source, self.location_mismatch,
            self.packed, self.observation))


@dataclass(frozen=True, slots=True)
class Filters:
    """Filters shared by the measurement list and the aggregation; None means any, a tuple
    means any of its values (an empty tuple matches nothing)."""

    since: str | None = None
    until: str | None = None
    cc: str | tuple[str, ...] | None = None
    asn: str | tuple[str, ...] | None = None
    test_name: str | tuple[str, ...] | None = None
    input: str | tuple[str, ...] | None = None
    domain: str | tuple[str, ...] | None = None
    verdict: str | tuple[str, ...] | None = None


# The measurement columns in the order both stores write and read them.
MEASUREMENT_COLUMNS = (
    "uid", "probe_id", "test_name", "input", "domain", "probe_cc", "probe_asn", "start_time",
    "received_at", "verdict", "layer", "mechanism", "location_source", "location_mismatch",
    "body",
)
# Filter field -> column; ``since`` and ``until`` bound ``start_time``.
FILTER_COLUMNS = {
    "cc": "probe_cc", "asn": "probe_asn", "test_name": "test_name", "input": "input",
    "domain": "domain", "verdict": "verdict",
}
COUNT_COLUMNS = ("measurement_count", *(f"{v}_count" for v in VERDICTS))


@lru_cache(maxsize=1024)
def domain_of(input_: str | None) -> str | None:
    """The lower-case host name of a URL input, or None for inputs that are not URLs.
    Cached (1,024 inputs of at most 2 KiB: 2 MiB at worst): a fleet measures the same few
    hundred inputs again and again, and every stored row asks (its column, each rollup's
    key) on the event loop."""
    if not input_ or "://" not in input_:
        return None
    try:
        host = urlsplit(input_).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def target_key(input_: str | None) -> str:
    """The key of ``target_state``: the input, or "" for tests without one (platforms)."""
    return input_ or ""


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One stored measurement or heartbeat, in storage order (for the detection pipeline)."""

    seq: int  # strictly increasing in storage order; the pipeline's cursor
    probe_id: str
    received_at: str  # TIME_FORMAT, the collector's clock
    body: str  # the JSON document ("" when ``observation`` stands for it)
    # A measurement's stored observation (``collector.detect.observed``), read instead of
    # its body; None when the row has none (the body is then given).
    observation: str | None = None
    uid: str = ""  # a measurement's uid ("" for a heartbeat)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Filters of ``GET /api/v1/events``. Times are ISO 8601 UTC strings with a ``Z``, the
    events' own format; an event matches ``since``/``until`` when it overlaps them."""

    since: str | None = None
    until: str | None = None
    cc: str | None = None
    asn: str | None = None
    kind: str | None = None
    status: str | None = None
    tier: str | None = None
    limit: int = 100


class Store(Protocol):
    # Where archived bodies are (``collector.store.archive_targets``), None when not set.
    archive_target: ArchiveTarget | None

    async def add_measurements(self, rows: list[StoredMeasurement]) -> list[str]:
        """Store the rows durably; returns the uids newly inserted (duplicates are skipped)."""

    async def measurements(
        self, filters: Filters, *, after: tuple[str, str] | None = None, limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Rows newest first (``start_time``, then ``uid``, descending), without ``body``;
        ``after`` is the (start_time, uid) of the last row already seen (keyset paging)."""

    async def measurement_bodies(self, uids: list[str]) -> dict[str, str]:
        """The JSON documents of the given uids (unknown uids are absent)."""

    async def replace_analysis(self, uid: str, body: str, verdict: str | None,
                               layer: str | None, mechanism: str | None, *,
                               archived_as: str | None = None,
                               observation: str | None = None) -> bool:
        """Store a re-analysed document of ``uid`` and its verdict columns (and those of
        ``latest_by_target`` when it is the row there), in one transaction; False when the uid
        is unknown. The caller keeps what the probe recorded inside ``body``
        (``collector.reanalyze``). ``observation`` replaces the row's stored observation
        (None: the row keeps none, and detection reads its body).

        An archived row stays archived: the caller writes ``body`` to a new archive file
        first and passes its reference as ``archived_as``, which replaces the row's; without
        it, an archived row is left as it is and False is returned."""

    async def aggregate(self, filters: Filters, axes: tuple[Axis, ...],
                        max_groups: int) -> list[dict[str, Any]]:
        """Counts per group of ``axes``: ``measurement_count`` and ``<verdict>_count``.

        Read from the rollups kept at ingest whenever the time bounds fall on whole hours.
        Returns at most ``max_groups + 1`` groups so the caller can tell it was cut."""

    async def count_measurements(self) -> int:
        """How many measurements are stored, from a counter kept at ingest (no row count:
        read at every /healthz and /metrics)."""

    async def latest_by_target(self) -> list[dict[str, Any]]:
        """The latest verdict per (cc, asn, test_name, input), maintained on insert."""

    async def target_verdicts(self) -> list[tuple[str, str, str, str, str | None]]:
        """(cc, asn, test_name, target, verdict) of each row of ``latest_by_target``, target ""
        for tests without an input, in no order: read at every /metrics scrape, so plain
        tuples and only the columns the metrics need."""

    async def add_heartbeat(self, probe_id: str, sent_at: str, received_at: str, body: str,
                            *, queue_depth: int | None = None,
                            software_version: str | None = None) -> None:
        """Append a heartbeat and update the probe's liveness row."""

    async def probes(self) -> list[dict[str, Any]]:
        """Liveness per probe: probe_id, first_seen, last_seen, sent_at, queue_depth,
        software_version (last_seen is when the last heartbeat arrived)."""

    async def add_token(self, probe_id: str, token_hash: str, created_at: str) -> None: ...

    async def revoke_token(self, probe_id: str, revoked_at: str) -> bool: ...

    async def probe_for_token(self, token_hash: str) -> tuple[str, bool] | None:
        """(probe_id, revoked) for a token hash, or None when unknown."""

    async def tokens(self) -> list[dict[str, Any]]: ...

    async def acquire_lease(self, name: str, holder: str, now: str, expires_at: str) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``expires_at``.

        Succeeds when the lease is free, expired at ``now``, or already held by ``holder``.
        With several collectors on one database this elects the one that runs a singleton job
        (detection) so its output is not duplicated."""

    async def release_lease(self, name: str, holder: str) -> None: ...

    # Detection (collector/pipeline.py). Events are JSON objects in the API's shape (design §4).

    async def upsert_events(self, events: list[dict[str, Any]]) -> None:
        """Insert or replace events by ``id``, durably, in one transaction."""

    async def events(self, query: EventFilter) -> list[dict[str, Any]]:
        """Events matching ``query``, latest start first."""

    async def measurement_feed(self, after: int, limit: int) -> list[FeedRow]:
        """Measurements stored after cursor ``after``, in storage order, at most ``limit``
        rows (a store that hands out whole batches may exceed it only with a single batch
        larger than ``limit``), each with its stored observation when it has one (then
        without its body), else with its body. A row committed later must never get a cursor
        below one already handed out."""

    async def heartbeat_feed(self, after: int, limit: int) -> list[FeedRow]:
        """Heartbeats stored after cursor ``after``, in storage order (same guarantee)."""

    async def load_state(self, name: str) -> str | None:
        """A named JSON document saved by ``save_state`` (detection's state), or None."""

    async def save_state(self, name: str, body: str, saved_at: str) -> None: ...

    async def schema_version(self) -> int: ...

    # Archive (collector/store/archive.py): bodies moved to files, summary rows kept.

    async def archive_candidates(self, before: str, after: tuple[str, str] | None,
                                 limit: int) -> list[ArchiveCandidate]:
        """Rows started before ``before`` whose body is still in the database, oldest first
        (``start_time``, then ``uid``), after the (start_time, uid) cursor ``after``."""

    async def mark_archived(self, moves: list[tuple[ArchiveCandidate, str]]) -> int:
        """In one transaction, empty each candidate's body and store its archive reference,
        skipping a row whose body changed since it was read; returns the rows emptied.
        (PostgreSQL keeps the bodies until ``drop_archived_partitions`` drops their month.)"""

    async def archive_refs(self, uids: list[str]) -> dict[str, str]:
        """The archive reference of each archived uid among ``uids``."""

    async def drop_archived_partitions(self, before: str) -> list[str]:
        """Drop the body partitions of months ending by ``before`` whose every body is
        archived and reads back identical from the archive; the names dropped (none on
        SQLite, which empties rows one by one)."""

    async def close(self) -> None: ...


def is_postgres(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))
