"""Where archive files live: a local directory or an S3-compatible bucket.

``collector.store.archive`` writes, verifies and reads archive files through ``ArchiveTarget``
only, so the move is the same on both: a file is stored whole under a name not used before,
read back whole and compared line by line before any body leaves the database. Names are
relative (``web_connectivity/2024-05-01/KG.jsonl.gz``): the database keeps them, never the
directory or the bucket, so an archive can be copied elsewhere with the same layout.

The local target writes under a temporary name, fsyncs, renames and fsyncs the directory. The
S3 target PUTs the object with its MD5 (the server refuses a body damaged on the way) and reads
it back with a GET; one archived body is read with ranged GETs of the gzip member that holds it,
and decoded members are kept in a cache bounded in bytes, so a page of bodies from one day costs
one request (reads from a directory keep the same cache). ``boto3`` is an optional dependency
(``pip install 'kuzot[s3]'``): it is imported only when a bucket is configured.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit


class TargetError(Exception):
    """The target refused or failed an operation (a write, a read back, a listing)."""


class ArchiveTarget(Protocol):
    def describe(self) -> str:
        """Where this is, for messages (a directory or ``s3://bucket/prefix``)."""

    def exists(self, name: str) -> bool: ...

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` durably as ``name`` (which does not exist yet)."""

    def get(self, name: str) -> bytes:
        """The whole stored file (OSError/TargetError when it cannot be read)."""

    def member(self, name: str, offset: int, *, fresh: bool = False) -> list[str]:
        """The lines of the gzip member that starts at byte ``offset`` of ``name``; ``fresh``
        reads the file itself, not a cached copy (a verification)."""


def _member_lines(data: bytes) -> list[str]:
    return [line.decode("utf-8") for line in data.split(b"\n")[:-1]]


class MemberCache:
    """Decoded gzip members by (file, offset), least recently used out first, at most
    ``limit`` bytes of text: the bodies of a page of the API usually share a member or two,
    and a member once written never changes (files are never rewritten). Thread-safe: reads
    run in worker threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._members: OrderedDict[tuple[str, int], tuple[list[str], int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> list[str] | None:
        with self._lock:
            found = self._members.get(key)
            if found is None:
                return None
            self._members.move_to_end(key)
            return found[0]

    def put(self, key: tuple[str, int], lines: list[str], size: int) -> None:
        with self._lock:
            if size > self.limit or key in self._members:
                return
            self._members[key] = (lines, size)
            self.size += size
            while self.size > self.limit:
                _, (_, dropped) = self._members.popitem(last=False)
                self.size -= dropped


DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class LocalTarget:
    root: Path
    cache: MemberCache = field(default_factory=lambda: MemberCache(DEFAULT_CACHE_BYTES),
                               compare=False, repr=False)

    def describe(self) -> str:
        return str(self.root)

    def path(self, name: str) -> Path:
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise TargetError(f"archive name outside the archive: {name}")
        return self.root / name

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def put(self, name: str, data: bytes) -> None:
        final = self.path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(final.name + ".tmp")
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temporary, final)
        _fsync_dir(final.parent)

    def get(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def member(self, name: str, offset: int, *, fresh: bool = False) -> list[str]:
        cached = None if fresh else self.cache.get((name, offset))
        if cached is not None:
            return cached
        decompressor = zlib.decompressobj(wbits=31)
        data = bytearray()
        with open(self.path(name), "rb") as f:
            f.seek(offset)
            while not decompressor.eof:
                chunk = f.read(65536)
                if not chunk:
                    raise EOFError("truncated gzip member")
                data += decompressor.decompress(chunk)
        lines = _member_lines(bytes(data))
        self.cache.put((name, offset), lines, len(data))
        return lines


@dataclass(frozen=True, slots=True)
class S3Settings:
    """``storage.archive_url`` and the S3 keys of the config. Credentials left None come from
    boto3's usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an
    instance role)."""

    url: str  # s3://bucket/prefix
    endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO; None for AWS
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    cache_bytes: int = DEFAULT_CACHE_BYTES


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without trailing slash) of ``s3://bucket[/prefix]``."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{url!r} is not s3://bucket/prefix")
    return parts.netloc, parts.path.strip("/")


_RANGE = 1024 * 1024  # bytes per ranged GET while reading one gzip member


class S3Target:
    def __init__(self, settings: S3Settings) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError as exc:  # the [s3] extra is not installed
            raise TargetError("storage.archive_url names a bucket but boto3 is not installed "
                              "(pip install 'kuzot[s3]')") from exc
        self.bucket, self.prefix = parse_s3_url(settings.url)
        self.url = settings.url
        self._errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=settings.endpoint, region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=10, read_timeout=60))
        self.cache = MemberCache(settings.cache_bytes)

    def describe(self) -> str:
        return self.url

    def key(self, name: str) -> str:
        if ".." in name.split("/") or name.startswith("/"):
            raise TargetError(f"archive name outside the archive: {name}")
        return f"{self.prefix}/{name}" if self.prefix else name

    def exists(self, name: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key(name))
        except self._errors as exc:
            if _status(exc) == 404:
                return False
            raise TargetError(f"{self.url}: {name}: {exc}") from exc
        return True

    def put(self, name: str, data: bytes) -> None:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            self._client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data,
                                    ContentMD5=md5, ContentType="application/gzip")
        except self._errors as exc:
            raise TargetError(f"{self.url}: upload of {name} failed: {exc}") from exc

    def get(self, name: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self.key(name))
            return bytes(response["Body"].read())
        except self._errors as exc:
            raise TargetError(f"{self.url}: {name}: {exc}") from exc

    def member(self, name: str, offset: int, *, fresh: bool = False) -> list[str]:
        cached = None if fresh else self.cache.get((name, offset))
        if cached is not None:
            return cached
        lines, size = self._fetch_member(name, offset)
        self.cache.put((name, offset), lines, size)
        return lines

    def _fetch_member(self, name: str, offset: int) -> tuple[list[str], int]:
        decompressor = zlib.decompressobj(wbits=31)
        data = bytearray()
        start = offset
        while not decompressor.eof:
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=self.key(name),
                    Range=f"bytes={start}-{start + _RANGE - 1}")
                chunk = bytes(response["Body"].read())
            except self._errors as exc:
                if _status(exc) == 416:  # the range starts past the end
                    raise EOFError("truncated gzip member") from exc
                raise TargetError(f"{self.url}: {name}: {exc}") from exc
            if not chunk:
                raise EOFError("truncated gzip member")
            data += decompressor.decompress(chunk)
            start += len(chunk)
        return _member_lines(bytes(data)), len(data)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def open_target(directory: str | None, s3: S3Settings | None,
                cache_bytes: int = DEFAULT_CACHE_BYTES) -> ArchiveTarget | None:
    """The configured target: the bucket when ``s3`` is given, else the directory."""
    if s3 is not None:
        return S3Target(s3)
    if directory is None:
        return None
    return LocalTarget(Path(directory), MemberCache(cache_bytes))
