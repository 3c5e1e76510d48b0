"""Old measurement bodies moved to daily archive files, never deleted.

A body older than ``storage.archive_after`` leaves the database for a file laid out like OONI's
archive: ``<root>/<test_name>/<YYYY-MM-DD>/<cc>.jsonl.gz`` in a local directory or under an
S3-compatible bucket's prefix (``collector.store.archive_targets``), one measurement's JSON
document per line, exactly as stored (documents are compact JSON, so a line holds one). A
second run for the same day and country writes ``<cc>.2.jsonl.gz`` and so on: a written file
is never rewritten.

The move is verified before anything is emptied, in this order:

1. write the file under a temporary name, fsync it, rename it into place, fsync the directory
   (to a bucket: PUT the object with its MD5);
2. re-read the file (from a bucket: GET it) and compare the SHA-256 of every line with that of
   the body read from the database;
3. in one transaction, empty the body of each row whose body is still the one read and store
   its reference ``<relative path>:<gzip member offset>:<line in member>``
   (``Store.mark_archived``). PostgreSQL keeps bodies in monthly partitions of their own and
   drops a month whole once every body in it is archived and reads back identical
   (``Store.drop_archived_partitions``).

A file is a series of gzip members of ``MEMBER_LINES`` lines (any gzip reader, ``zcat``
included, reads it as one stream), so reading one archived body decompresses one member, not
the whole day.

A crash before step 3 leaves every body in the database (and perhaps a file nothing refers to:
the next run archives those rows again into a new file). The summary row and the rollups are
never touched, so lists and aggregations answer as before; ``measurement_bodies`` reads an
archived body back from its file. A re-analysis of an archived row writes its new document to
a new file (``rearchive``) and moves the row's reference there: the row stays archived, and the
old file, holding the document as it was, is left as written.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from collector.store.archive_targets import ArchiveTarget, TargetError
from collector.store.interface import StoreUnavailable


class ArchiveError(Exception):
    """An archive file does not hold what was written to it: nothing is emptied."""


class ArchiveUnreadable(StoreUnavailable):
    """An archived body cannot be read back (file missing or damaged): the API answers 503,
    and the operator restores the archive directory."""


@dataclass(frozen=True, slots=True)
class ArchiveCandidate:
    """A row whose body may move: ``stored`` is the column value as read, so the row is only
    emptied if nothing replaced the body in the meantime (a re-analysis)."""

    uid: str
    test_name: str
    probe_cc: str
    start_time: str
    body: str
    stored: Any


class ArchivingStore(Protocol):
    async def archive_candidates(self, before: str, after: tuple[str, str] | None,
                                 limit: int) -> list[ArchiveCandidate]: ...

    async def mark_archived(self, moves: list[tuple[ArchiveCandidate, str]]) -> int: ...

    async def drop_archived_partitions(self, before: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    files: tuple[str, ...]  # relative paths written (or, on a dry run, that would be)
    bodies: int  # bodies found older than the cut-off
    emptied: int  # rows emptied (0 on a dry run)
    dropped: tuple[str, ...] = ()  # PostgreSQL body partitions dropped, all archived, verified


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _safe(part: str) -> str:
    """A path component from a value probes send (test name, country): no separators."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in part)
    return cleaned or "_"


def group_key(test_name: str, start_time: str, probe_cc: str) -> tuple[str, str, str]:
    return (_safe(test_name), start_time[:10], _safe(probe_cc))


def _free_name(target: ArchiveTarget, key: tuple[str, str, str]) -> str:
    test_name, day, cc = key
    name = f"{test_name}/{day}/{cc}.jsonl.gz"
    n = 2
    while target.exists(name):
        name = f"{test_name}/{day}/{cc}.{n}.jsonl.gz"
        n += 1
    return name


MEMBER_LINES = 256  # lines per gzip member: reading one body decompresses one member


def encode(bodies: list[str]) -> tuple[bytes, list[tuple[int, int]]]:
    """The file's bytes and, per body, (byte offset of its gzip member, line in the member).
    The file is a series of gzip members of ``MEMBER_LINES`` lines, which any gzip reader
    reads as one stream."""
    out = io.BytesIO()
    places: list[tuple[int, int]] = []
    for first in range(0, len(bodies), MEMBER_LINES):
        offset = out.tell()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as member:
            for n, body in enumerate(bodies[first:first + MEMBER_LINES]):
                if "\n" in body:
                    raise ArchiveError("a body holds a newline: it cannot be a JSON line")
                member.write(body.encode("utf-8") + b"\n")
                places.append((offset, n))
    return out.getvalue(), places


def write_file(target: ArchiveTarget, key: tuple[str, str, str],
               bodies: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Step 1: the bodies, one a line, durably in a new file of ``target``; returns its
    name and the place of each body (``encode``)."""
    data, places = encode(bodies)
    name = _free_name(target, key)
    try:
        target.put(name, data)
    except (OSError, TargetError) as exc:
        raise ArchiveError(f"{name}: not written: {exc}") from exc
    return name, places


def verify_file(target: ArchiveTarget, name: str, bodies: list[str]) -> None:
    """Step 2: the file read back (a GET from a bucket) holds exactly these bodies, in
    order, by digest."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(target.get(name)), mode="rb") as f:
            lines = [line.rstrip(b"\n").decode("utf-8") for line in f]
    except (OSError, EOFError, UnicodeDecodeError, TargetError, zlib.error) as exc:
        raise ArchiveError(f"{name}: unreadable after writing: {exc}") from exc
    if len(lines) != len(bodies) or any(
            digest(a) != digest(b) for a, b in zip(lines, bodies, strict=True)):
        raise ArchiveError(f"{name}: does not hold what was written")


async def store_verified(target: ArchiveTarget, key: tuple[str, str, str], bodies: list[str],
                         checkpoint: Callable[[str, str], None] | None = None,
                         ) -> tuple[str, list[tuple[int, int]]]:
    """Steps 1 and 2 (in a worker thread: a bucket answers slowly): the file's name and
    each body's ``<name>:<member offset>:<line>`` place."""
    name, places = await asyncio.to_thread(write_file, target, key, bodies)
    if checkpoint is not None:
        checkpoint("written", name)
    await asyncio.to_thread(verify_file, target, name, bodies)
    if checkpoint is not None:
        checkpoint("verified", name)
    return name, places


async def archive(store: ArchivingStore, target: ArchiveTarget, before: str, *,
                  dry_run: bool = False, batch: int = 5000,
                  checkpoint: Callable[[str, str], None] | None = None) -> ArchiveReport:
    """Move the bodies of measurements started before ``before`` (TIME_FORMAT) to ``target``.

    Works in batches of ``batch`` rows so memory stays bounded. ``checkpoint(step, name)`` is
    called after "written" and "verified" (a failure raised there stops the run between steps,
    as a crash would)."""
    files: list[str] = []
    found = emptied = 0
    after: tuple[str, str] | None = None
    while True:
        candidates = await store.archive_candidates(before, after, batch)
        if not candidates:
            break
        after = (candidates[-1].start_time, candidates[-1].uid)
        found += len(candidates)
        groups: dict[tuple[str, str, str], list[ArchiveCandidate]] = defaultdict(list)
        for c in candidates:
            groups[group_key(c.test_name, c.start_time, c.probe_cc)].append(c)
        for key, members in sorted(groups.items()):
            if dry_run:
                files.append("/".join(key) + ".jsonl.gz")
                continue
            name, places = await store_verified(target, key, [m.body for m in members],
                                                checkpoint)
            emptied += await store.mark_archived(
                [(m, f"{name}:{offset}:{line}")
                 for m, (offset, line) in zip(members, places, strict=True)])
            files.append(name)
        if len(candidates) < batch:
            break
    dropped = () if dry_run else tuple(await store.drop_archived_partitions(before))
    return ArchiveReport(tuple(files), found, emptied, dropped)


def _read_archived(target: ArchiveTarget, refs: dict[str, str],
                   fresh: bool = False) -> dict[str, str]:
    by_member: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for uid, ref in refs.items():
        name, start, line = ref.rsplit(":", 2)
        by_member[(name, int(start))].append((uid, int(line)))
    out: dict[str, str] = {}
    for (name, offset), wanted in by_member.items():
        try:
            lines = target.member(name, offset, fresh=fresh)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, TargetError) as exc:
            raise ArchiveUnreadable(f"archive file {name}: {exc}") from exc
        for uid, number in wanted:
            if number >= len(lines):
                raise ArchiveUnreadable(f"archive file {name} has no line {number}")
            out[uid] = lines[number]
    return out


async def read_archived(target: ArchiveTarget | None, refs: dict[str, str], *,
                        fresh: bool = False) -> dict[str, str]:
    """Bodies by uid from references ``<name>:<member offset>:<line>``; each member is
    decompressed once, in a worker thread (a bucket is a network round trip away). ``fresh``
    reads every member from the archive itself, none from the cache."""
    if not refs:
        return {}
    if target is None:
        raise ArchiveUnreadable("archived bodies but no archive directory or bucket given")
    return await asyncio.to_thread(_read_archived, target, refs, fresh)


async def feed_bodies(target: ArchiveTarget | None,
                      rows: list[tuple[str, str | None, str | None]]) -> list[str]:
    """Bodies for a feed page of (uid, body or None, archive reference or None), in order:
    detection catching up on old rows reads archived ones back like the API does."""
    refs = {uid: ref for uid, _, ref in rows if ref is not None}
    if not refs:
        return [body or "" for _, body, _ in rows]
    archived = await read_archived(target, refs)
    return [archived[uid] if ref is not None else (body or "") for uid, body, ref in rows]


async def rearchive(target: ArchiveTarget,
                    documents: list[tuple[str, str, str, str, str]]) -> dict[str, str]:
    """New files for re-analysed documents of archived rows, (uid, test_name, start_time,
    probe_cc, body) each, written and verified like a move (steps 1 and 2); returns each uid's
    new reference. The old files are not touched: they keep the documents as they were."""
    groups: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    for uid, test_name, start_time, cc, body in documents:
        groups[group_key(test_name, start_time, cc)].append((uid, body))
    refs: dict[str, str] = {}
    for key, members in sorted(groups.items()):
        name, places = await store_verified(target, key, [body for _, body in members])
        for (uid, _), (offset, line) in zip(members, places, strict=True):
            refs[uid] = f"{name}:{offset}:{line}"
    return refs
