"""List health: which listed entries the control vantage has failed to fetch for days.

Citizen Lab's lists carry sites that are gone, moved or parked; a probe measuring them spends
a volunteer's budget on sites no one can reach, and its verdicts say ``down`` forever. The
control vantage already fetches every entry a probe measures, from outside, so the collector
keeps, per listed URL, the outcome of those fetches: when one last worked, and since when
every one has failed. An entry whose fetches have all failed over at least ``days`` days
(``target_lists.health_days``) is *flagged*, for the operator to prune or fix; nothing is
removed automatically, because a site blocking foreign addresses looks the same from here.

A fetch fails when the control's final page has a failure (DNS, TCP, TLS, HTTP), an HTTP
status of 400 or more (``http_status_404``), or the title of a domain parking page
(``parked_domain``: the registrar's "this domain is for sale" pages answer 200).

Pure: no I/O and no clock of its own; ``list_health_web`` feeds it control views and saves
it as a versioned document in the store's named state (``STATE_NAME``), merging with what
another collector on the same database saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

VERSION = 1
STATE_NAME = "target_list_health"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Titles of registrars' and parking services' pages (lower case, matched as substrings).
PARKED_TITLES = (
    "domain is for sale", "domain may be for sale", "buy this domain", "domain for sale",
    "parked domain", "this domain is parked", "domain parking", "parkingcrew", "sedo domain",
    "hugedomains", "dan.com",
)
MAX_ENTRIES = 20_000
"""At most this many URLs are kept (the lists served hold about 2,000); past it the
oldest-touched entries are dropped, so hostile or stale data cannot grow the document."""

Status = Literal["unchecked", "ok", "failing", "flagged"]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def fetch_failure(view: Mapping[str, Any]) -> str | None:
    """Why the control's fetch of a URL failed, from its view; None when it worked."""
    page = view.get("http_request")
    if not isinstance(page, Mapping):
        return "unknown_failure: no http_request in the control view"
    failure = page.get("failure")
    if failure:
        return str(failure)
    status = page.get("status_code")
    if isinstance(status, int) and status >= 400:
        return f"http_status_{status}"
    title = str(page.get("title") or "").lower()
    if any(phrase in title for phrase in PARKED_TITLES):
        return "parked_domain"
    return None


@dataclass(slots=True)
class EntryHealth:
    """The control's fetches of one URL: ``failing_since`` is the first failure after the
    last success (None while the last fetch worked); times are ``TIME_FORMAT`` strings."""

    last_ok: str | None = None
    failing_since: str | None = None
    last_failed: str | None = None
    last_failure: str | None = None
    failures: int = 0  # fetches failed since ``failing_since``

    @property
    def touched(self) -> str:
        return max(self.last_ok or "", self.last_failed or "")

    def failing_for(self) -> timedelta:
        """How long the failures have lasted: from the first to the latest failed fetch."""
        if self.failing_since is None or self.last_failed is None:
            return timedelta(0)
        return parse_stamp(self.last_failed) - parse_stamp(self.failing_since)


class ListHealth:
    """The health of every URL the control fetched (see the module docstring)."""

    def __init__(self, entries: dict[str, EntryHealth] | None = None) -> None:
        self.entries: dict[str, EntryHealth] = entries or {}
        self.dirty = False

    def record(self, url: str, at: datetime, failure: str | None) -> None:
        """One control fetch of ``url`` at ``at``: ``failure`` None when it worked."""
        when = stamp(at)
        entry = self.entries.setdefault(url, EntryHealth())
        if failure is None:
            if entry.last_ok is None or when >= entry.last_ok:
                entry.last_ok = when
            if entry.failing_since is not None and when >= entry.failing_since:
                entry.failing_since, entry.failures = None, 0
        else:
            # At a tie (the same second) the later arrival wins, as for a success.
            if entry.last_ok is None or when >= entry.last_ok:
                if entry.failing_since is None or when < entry.failing_since:
                    entry.failing_since = when
                entry.failures += 1
            if entry.last_failed is None or when >= entry.last_failed:
                entry.last_failed, entry.last_failure = when, failure
        self.dirty = True
        self._bound()

    def _bound(self) -> None:
        if len(self.entries) <= MAX_ENTRIES:
            return
        keep = sorted(self.entries.items(), key=lambda item: item[1].touched,
                      reverse=True)[:MAX_ENTRIES]
        self.entries = dict(keep)

    def merge(self, other: ListHealth) -> None:
        """Fold in what another collector saved: latest success and failure win, and a
        failure streak is the one after the latest success of either."""
        for url, theirs in other.entries.items():
            mine = self.entries.get(url)
            if mine is None:
                self.entries[url] = EntryHealth(**asdict(theirs))
                continue
            last_ok = max(filter(None, (mine.last_ok, theirs.last_ok)), default=None)
            streaks = [e for e in (mine, theirs) if e.failing_since is not None
                       and (last_ok is None or e.failing_since > last_ok)]
            mine.last_ok = last_ok
            mine.failing_since = min((e.failing_since for e in streaks if e.failing_since),
                                     default=None)
            mine.failures = max((e.failures for e in streaks), default=0)
            if theirs.last_failed and (mine.last_failed is None
                                       or theirs.last_failed > mine.last_failed):
                mine.last_failed, mine.last_failure = theirs.last_failed, theirs.last_failure
        self._bound()

    def status(self, url: str, days: float) -> Status:
        entry = self.entries.get(url)
        if entry is None:
            return "unchecked"
        if entry.failing_since is None:
            return "ok"
        return "flagged" if entry.failing_for() >= timedelta(days=days) else "failing"

    def report(self, listed: Iterable[tuple[str, str, str]], days: float) -> list[dict[str, Any]]:
        """One row per listed ``(url, cc, category)``: its status and fetch history, the
        flagged ones first (longest failing first), then failing, unchecked and ok."""
        order = {"flagged": 0, "failing": 1, "unchecked": 2, "ok": 3}
        rows: list[dict[str, Any]] = []
        for url, cc, category in listed:
            entry = self.entries.get(url, EntryHealth())
            rows.append({
                "url": url, "cc": cc, "category": category, "status": self.status(url, days),
                "failing_days": round(entry.failing_for().total_seconds() / 86400, 2),
                "failing_since": entry.failing_since, "last_ok": entry.last_ok,
                "last_failed": entry.last_failed, "last_failure": entry.last_failure,
                "failures": entry.failures,
            })
        rows.sort(key=lambda r: (order[r["status"]], -r["failing_days"], r["url"]))
        return rows

    def to_document(self) -> dict[str, Any]:
        return {"version": VERSION,
                "entries": {url: asdict(entry) for url, entry in self.entries.items()}}

    @classmethod
    def from_document(cls, document: object) -> ListHealth:
        """The health saved by ``to_document``; an unknown version or shape starts empty
        (the history is advisory, and rebuilds itself within days)."""
        if not isinstance(document, dict) or document.get("version") != VERSION:
            return cls()
        raw = document.get("entries")
        if not isinstance(raw, dict):
            return cls()
        names = {f.name for f in fields(EntryHealth)}
        entries = {}
        for url, data in raw.items():
            if isinstance(url, str) and isinstance(data, dict) and set(data) <= names \
                    and _well_typed(data):
                entries[url] = EntryHealth(**data)
        return cls(entries)


def _well_typed(data: Mapping[str, Any]) -> bool:
    return all(isinstance(value, int) and not isinstance(value, bool) if key == "failures"
               else value is None or isinstance(value, str) for key, value in data.items())
