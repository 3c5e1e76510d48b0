"""Old measurement bodies moved to daily archive files, never deleted.

A body older than ``storage.archive_after`` leaves the database for a file laid out like OONI's
archive: ``<root>/<test_name>/<YYYY-MM-DD>/<cc>.jsonl.gz``, one measurement's JSON document per
line, exactly as stored (documents are compact JSON, so a line holds one). A second run for the
same day and country writes ``<cc>.2.jsonl.gz`` and so on: a written file is never rewritten.

The move is verified before anything is emptied, in this order:

1. write the file under a temporary name, fsync it, rename it into place, fsync the directory;
2. re-read the file and compare the SHA-256 of every line with that of the body read from the
   database;
3. in one transaction, empty the body of each row whose body is still the one read and store
   its reference ``<relative path>:<gzip member offset>:<line in member>``
   (``Store.mark_archived``).

A file is a series of gzip members of ``MEMBER_LINES`` lines (any gzip reader, ``zcat``
included, reads it as one stream), so reading one archived body decompresses one member, not
the whole day.

A crash before step 3 leaves every body in the database (and perhaps a file nothing refers to:
the next run archives those rows again into a new file). The summary row and the rollups are
never touched, so lists and aggregations answer as before; ``measurement_bodies`` reads an
archived body back from its file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    files: tuple[str, ...]  # relative paths written (or, on a dry run, that would be)
    bodies: int  # bodies found older than the cut-off
    emptied: int  # rows emptied (0 on a dry run)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _safe(part: str) -> str:
    """A path component from a value probes send (test name, country): no separators."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in part)
    return cleaned or "_"


def _group_key(c: ArchiveCandidate) -> tuple[str, str, str]:
    return (_safe(c.test_name), c.start_time[:10], _safe(c.probe_cc))


def _free_name(directory: Path, cc: str) -> Path:
    path = directory / f"{cc}.jsonl.gz"
    n = 2
    while path.exists():
        path = directory / f"{cc}.{n}.jsonl.gz"
        n += 1
    return path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


MEMBER_LINES = 256  # lines per gzip member: reading one body decompresses one member


def write_file(root: Path, key: tuple[str, str, str],
               bodies: list[str]) -> tuple[Path, list[tuple[int, int]]]:
    """Step 1: the bodies, one a line, durably in a new file under ``root``; returns the file
    and, per body, (byte offset of its gzip member, line in the member). The file is a series
    of gzip members of ``MEMBER_LINES`` lines, which any gzip reader reads as one stream."""
    test_name, day, cc = key
    directory = root / test_name / day
    directory.mkdir(parents=True, exist_ok=True)
    final = _free_name(directory, cc)
    temporary = final.with_name(final.name + ".tmp")
    places: list[tuple[int, int]] = []
    with open(temporary, "wb") as raw:
        for first in range(0, len(bodies), MEMBER_LINES):
            offset = raw.tell()
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
                for n, body in enumerate(bodies[first:first + MEMBER_LINES]):
                    if "\n" in body:
                        raise ArchiveError("a body holds a newline: it cannot be a JSON line")
                    out.write(body.encode("utf-8") + b"\n")
                    places.append((offset, n))
        raw.flush()
        os.fsync(raw.fileno())
    os.rename(temporary, final)
    _fsync_dir(directory)
    return final, places


def read_member(path: Path, offset: int) -> list[str]:
    """The lines of the gzip member starting at byte ``offset`` of ``path``."""
    decompressor = zlib.decompressobj(wbits=31)
    data = bytearray()
    with open(path, "rb") as f:
        f.seek(offset)
        while not decompressor.eof:
            chunk = f.read(65536)
            if not chunk:
                raise EOFError("truncated gzip member")
            data += decompressor.decompress(chunk)
    return [line.decode("utf-8") for line in bytes(data).split(b"\n")[:-1]]


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rb") as f:
        return [line.rstrip(b"\n").decode("utf-8") for line in f]


def verify_file(path: Path, bodies: list[str]) -> None:
    """Step 2: the file read back holds exactly these bodies, in order, by digest."""
    try:
        lines = read_lines(path)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path.name}: unreadable after writing: {exc}") from exc
    if len(lines) != len(bodies) or any(
            digest(a) != digest(b) for a, b in zip(lines, bodies, strict=True)):
        raise ArchiveError(f"{path.name}: does not hold what was written")


async def archive(store: ArchivingStore, root: Path, before: str, *, dry_run: bool = False,
                  batch: int = 5000,
                  checkpoint: Callable[[str, Path], None] | None = None) -> ArchiveReport:
    """Move the bodies of measurements started before ``before`` (TIME_FORMAT) under ``root``.

    Works in batches of ``batch`` rows so memory stays bounded. ``checkpoint(step, path)`` is
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
            groups[_group_key(c)].append(c)
        for key, members in sorted(groups.items()):
            if dry_run:
                files.append("/".join(key) + ".jsonl.gz")
                continue
            bodies = [m.body for m in members]
            path, places = write_file(root, key, bodies)
            if checkpoint is not None:
                checkpoint("written", path)
            verify_file(path, bodies)
            if checkpoint is not None:
                checkpoint("verified", path)
            relative = path.relative_to(root).as_posix()
            emptied += await store.mark_archived(
                [(m, f"{relative}:{offset}:{line}")
                 for m, (offset, line) in zip(members, places, strict=True)])
            files.append(relative)
        if len(candidates) < batch:
            break
    return ArchiveReport(tuple(files), found, emptied)


def read_archived(root: Path, refs: dict[str, str]) -> dict[str, str]:
    """Bodies by uid from references ``<relative path>:<member offset>:<line>``; each member
    is decompressed once."""
    by_member: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for uid, ref in refs.items():
        relative, start, line = ref.rsplit(":", 2)
        by_member[(relative, int(start))].append((uid, int(line)))
    out: dict[str, str] = {}
    for (relative, offset), wanted in by_member.items():
        if ".." in Path(relative).parts:
            raise ArchiveUnreadable(f"archive reference outside the archive: {relative}")
        try:
            lines = read_member(root / relative, offset)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise ArchiveUnreadable(f"archive file {relative}: {exc}") from exc
        for uid, number in wanted:
            if number >= len(lines):
                raise ArchiveUnreadable(f"archive file {relative} has no line {number}")
            out[uid] = lines[number]
    return out


def feed_bodies(root: Path | None, rows: list[tuple[str, str | None, str | None]]) -> list[str]:
    """Bodies for a feed page of (uid, body or None, archive reference or None), in order:
    detection catching up on old rows reads archived ones back like the API does."""
    refs = {uid: ref for uid, _, ref in rows if ref is not None}
    if not refs:
        return [body or "" for _, body, _ in rows]
    if root is None:
        raise ArchiveUnreadable("archived bodies but no archive directory given")
    archived = read_archived(root, refs)
    return [archived[uid] if ref is not None else (body or "") for uid, body, ref in rows]
