"""An upload made ready to store: parsed, checked, compressed, and summarised for the metrics.

One pure function, ``prepare_upload``, does everything the ingest does to a request body before
the store: the strict parse, the batch's shape, each measurement's validation (which scrubs,
serializes, compresses and extracts detection's observation) and what the fleet metrics record
of each. ``collector.api.ingest_workers`` runs it on a worker thread or in a worker process;
both give the same ``Prepared``, and nothing in it refers to the request, so it crosses a
process boundary as it is.

Why the metrics' summary is made here and not in the handler: the handler runs on the event
loop, which every client shares, and reading a measurement's timings is work for each of a
batch's measurements. A process returning it saves the event loop that work too.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collector.api.geoip import Location
from collector.api.validate import (
    BatchInvalid,
    Invalid,
    Rejection,
    batch_items,
    parse_json,
    validate_batch,
)
from collector.limits import Limits
from collector.metrics.fleet import Outcome, outcome_of
from collector.store import StoredMeasurement


@dataclass(frozen=True, slots=True)
class Refusal:
    """The whole body is refused (not JSON, not a batch): one reason for the 400.
    ``counted``: a body that is JSON but no batch counts in ``kuzot_ingest_rejected_total``;
    one that is not JSON at all does not (it names no measurement)."""

    reason: str
    message: str
    counted: bool


@dataclass(frozen=True, slots=True)
class Prepared:
    """What ``prepare_upload`` made of a body: a refusal, or the number of measurements with
    either their rejections or their rows (and, for each row, its metrics' outcome)."""

    refusal: Refusal | None = None
    count: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rows: list[StoredMeasurement] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def prepare_upload(raw: bytes, limits: Limits, now: datetime, probe_id: str,
                   submitter_ip: str | None, located: Location | None, *,
                   keep_text: bool = True) -> Prepared:
    """The stored rows of request body ``raw``, or why it is refused.

    ``keep_text=False`` leaves each row's ``body`` empty (its ``packed`` form is what a store
    writes): a worker process then sends back the compressed bytes alone, a fifth of the
    text, which the collector's process would otherwise have to decode again.
    """
    try:
        body = parse_json(raw)
    except Invalid as exc:
        return Prepared(refusal=Refusal(exc.reason, str(exc), counted=False))
    try:
        items = batch_items(body, limits.max_batch)
    except Invalid as exc:
        return Prepared(refusal=Refusal(exc.reason, str(exc), counted=True))
    try:
        rows = validate_batch(items, limits, now, probe_id, submitter_ip, located,
                              keep_text=keep_text)
    except BatchInvalid as exc:
        return Prepared(count=len(items), rejections=exc.rejections)
    outcomes = [outcome_of(item, row.probe_cc, row.probe_asn, row.input,
                           _start(row.start_time))
                for item, row in zip(items, rows, strict=True)]
    return Prepared(count=len(items), rows=rows, outcomes=outcomes)


def _start(text: str) -> datetime:
    """A stored start time (``YYYY-MM-DD HH:MM:SS``, validation's canonical form) read by
    slicing: ``strptime`` costs several times more, for every measurement."""
    return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                    int(text[14:16]), int(text[17:19]), tzinfo=UTC)


def warm() -> bool:
    """Nothing: run in new worker processes so that their imports are done before the first
    upload waits on them."""
    return True


WORKER_NICENESS = 5


def start_worker() -> None:
    """Each worker process's start.

    Its priority is lowered (``WORKER_NICENESS``): when the workers' preparing competes with
    the collector's own process for a core, the event loop (every client's answers, the
    store's single writer) comes first; a hostile upload that costs a worker seconds of
    CPU (the scrub's worst case) then delays nobody else's ``/healthz``.

    The objects its imports made live as long as it does, so they leave the garbage
    collector's view (``gc.freeze``). A batch's parse makes thousands of containers, each full
    collection then walked the imports' 64,000 objects too: 33 us of collection per
    measurement before, 10 after (BENCHMARKS.md, "Ingest with worker processes")."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here: the worker runs at the collector's priority
        pass
    gc.freeze()
