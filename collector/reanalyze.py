"""``python -m collector reanalyze``: the current verdict rules applied to stored measurements.

For every stored measurement of a versioned test (``web_connectivity``) whose start time is in
``[since, until)`` and whose verdict came from older rules (``analysis_version`` below the
current one; a verdict without it is version 1, a measurement without a verdict is older than
any), the rules are re-run on the recorded observations (``collector.reanalysis.rerun``) and
the new ``analysis`` replaces the old one in the stored document and in its verdict columns.

Nothing acknowledged is lost: the ``analysis`` the probe sent is kept in the same document as
``test_keys.x_recorded_analysis`` (written the first time a measurement is re-analysed, never
overwritten), and every other byte of the document stays as it was (the document is edited
through the typed model, ``probe.core.model``). ``--dry-run`` counts without writing.

An archived measurement (``collector.store.archive``) stays archived: its re-analysed document
is written to a new archive file, read back and compared like any archived body, and only
then does the row take the new verdict and point at the new file, in one transaction. The
database grows by nothing but the verdict columns; the old file keeps the document as it was
before (archive files are never rewritten). Without a reachable archive the run stops with
``ArchiveError`` and those rows keep their old verdict.

Re-analysis rewrites the stored verdicts that ``GET /api/v1/measurements``, the aggregation and
``latest_by_target`` serve. It does not re-run detection over past time: events already
published stay as they were.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.detect import extract, observed
from collector.reanalysis import VERSIONED, rerun
from collector.store import TIME_FORMAT, Filters, Store
from collector.store.archive import ArchiveError, rearchive
from probe.core.model import Analysis, Measurement, ModelError

PAGE = 500
RECORDED = "x_recorded_analysis"


@dataclass(slots=True)
class Report:
    """Counts of one run; ``changes`` by (old verdict/layer/mechanism -> new)."""

    examined: int = 0
    current: int = 0
    reanalysed: int = 0
    changed: int = 0
    unchanged: int = 0
    not_rerunnable: int = 0
    stored: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)  # uids that could not be re-run

    def as_json(self) -> dict[str, Any]:
        return {"examined": self.examined, "current": self.current,
                "reanalysed": self.reanalysed, "changed": self.changed,
                "unchanged": self.unchanged, "not_rerunnable": self.not_rerunnable,
                "stored": self.stored, "changes": dict(sorted(self.changes.items())),
                "skipped_uids": self.skipped[:100]}


def parse_time(text: str) -> str:
    """An ISO 8601 time (``2024-05-01``, ``2024-05-01T12:00:00Z``, with an offset) as the
    store's UTC text; ValueError with the reason otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from exc
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime(TIME_FORMAT)


def _label(analysis: Analysis | None) -> str:
    if analysis is None:
        return "none"
    return "/".join(str(v) for v in (analysis.verdict, analysis.layer, analysis.mechanism))


def revise(document: dict[str, Any]) -> tuple[Measurement, Analysis] | None:
    """The measurement with the current rules' verdict (the probe's kept as recorded) and
    that verdict, or None when there is nothing to re-run. Raises ModelError for a document
    the model cannot read."""
    measurement = Measurement.from_wire(document)
    again = rerun(document)
    if again is None:
        return None
    verdict = Analysis.from_wire(again, "$.test_keys.analysis")
    keys = measurement.test_keys
    extra = dict(keys.extra)
    if RECORDED not in extra and keys.present("analysis"):
        extra[RECORDED] = document["test_keys"]["analysis"]
    keys = dataclasses.replace(keys, analysis=verdict, extra=extra)
    return dataclasses.replace(measurement, test_keys=keys), verdict


async def reanalyze(store: Store, since: str, until: str | None = None, *,
                    dry_run: bool = False, page: int = PAGE) -> Report:
    """Re-analyse the stored measurements of ``[since, until)`` (store time strings)."""
    report = Report()
    for test_name, version in VERSIONED.items():
        filters = Filters(since=since, until=until, test_name=test_name)
        after: tuple[str, str] | None = None
        while True:
            rows = await store.measurements(filters, after=after, limit=page)
            if not rows:
                break
            after = (rows[-1]["start_time"], rows[-1]["uid"])
            uids = [r["uid"] for r in rows]
            bodies = await store.measurement_bodies(uids)
            archived = await store.archive_refs(uids)
            pending: list[tuple[dict[str, Any], str, Analysis]] = []
            by_uid = {r["uid"]: r for r in rows}
            for uid, body in bodies.items():
                report.examined += 1
                revised = _one(uid, body, version, report)
                if revised is None or dry_run:
                    continue
                text, new = revised
                if uid in archived:
                    pending.append((by_uid[uid], text, new))
                elif await store.replace_analysis(uid, text, new.verdict, new.layer,
                                                  new.mechanism,
                                                  observation=_observation(text)):
                    report.stored += 1
            if pending:
                await _store_archived(store, pending, report)
    return report


async def _store_archived(store: Store, pending: list[tuple[dict[str, Any], str, Analysis]],
                          report: Report) -> None:
    """New archive files for the re-analysed documents of archived rows, then their rows."""
    if store.archive_target is None:
        raise ArchiveError("archived measurements to re-analyse but no archive configured")
    refs = await rearchive(store.archive_target, [
        (row["uid"], row["test_name"], row["start_time"], row["probe_cc"], text)
        for row, text, _ in pending])
    for row, text, new in pending:
        if await store.replace_analysis(row["uid"], text, new.verdict, new.layer,
                                        new.mechanism, archived_as=refs[row["uid"]],
                                        observation=_observation(text)):
            report.stored += 1


def _observation(text: str) -> str:
    """What detection makes of the re-analysed document, stored with its row in place of
    what it made of the old one (``collector.detect.observed``; the probe's id is not in it)."""
    return observed.encode(extract.observation(json.loads(text), ""))


def _one(uid: str, body: str, version: int, report: Report) -> tuple[str, Analysis] | None:
    """The re-analysed document and its verdict, or None when there is nothing to store;
    counts what it saw in ``report``."""
    try:
        document = json.loads(body)
        old = Measurement.from_wire(document).analysis
    except (ValueError, ModelError):
        report.not_rerunnable += 1
        report.skipped.append(uid)
        return None
    if old is not None and old.version >= version:
        report.current += 1
        return None
    try:
        revised = revise(document)
    except ModelError:
        revised = None
    if revised is None:
        report.not_rerunnable += 1
        report.skipped.append(uid)
        return None
    measurement, new = revised
    report.reanalysed += 1
    if _label(old) == _label(new):
        report.unchanged += 1
    else:
        report.changed += 1
        report.changes[f"{_label(old)} -> {_label(new)}"] += 1
    text = json.dumps(measurement.to_wire(), ensure_ascii=False, separators=(",", ":"))
    return text, new
