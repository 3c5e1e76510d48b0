"""A throwaway PostgreSQL cluster for tests: initdb in a temporary directory, loopback only.

The server binaries come from Debian's ``postgresql`` package (``.ci/run`` installs it). The
server refuses to run as root, so under root the cluster belongs to the ``postgres`` system
user the package creates. It listens on 127.0.0.1 on a free port, with its socket in its own
directory, trusts local connections (it lives only while the tests run), and is stopped and
deleted at the end. Its default collation is ICU ``en-US`` (as on a typical production server,
where "a" sorts before "B"), so tests notice any ordering that differs from SQLite's bytewise one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.ports import free_port


def server_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres, or None when not installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                        else 0)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    bindir = server_bindir()
    if bindir is None or not all((bindir / n).exists() for n in ("pg_ctl", "psql")):
        return "PostgreSQL server binaries not installed (Debian package: postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to own the cluster"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing"
    return None


class PostgresCluster:
    def __init__(self, bindir: Path, directory: Path, port: int) -> None:
        self.bindir = bindir
        self.directory = directory
        self.port = port

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @staticmethod
    def _as_owner(args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(self._as_owner(list(args)), capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stdout}{result.stderr}")

    @classmethod
    def start(cls) -> PostgresCluster:
        bindir = server_bindir()
        assert bindir is not None, unavailable_reason()
        directory = Path(tempfile.mkdtemp(prefix="kuzot-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        cluster = cls(bindir, directory, free_port())
        try:
            cluster._run(str(bindir / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                         "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
                         "--locale-provider=icu", "--icu-locale=en-US", "--no-sync")
            cluster.start_server()
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return cluster

    def start_server(self) -> None:
        """Start the server on the cluster's port (again, after ``stop_server``)."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.directory} -c max_connections=200 "
                   f"-c shared_buffers=32MB")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start")

    def stop_server(self, mode: str = "immediate") -> None:
        """Stop the server and keep its data; ``immediate`` is a crash (recovery from the WAL
        on the next start), ``fast`` a clean shutdown that disconnects the clients."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  timeout=60)

    def execute(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql as the superuser; returns what psql printed."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-d", self.dsn(database), "-c", sql],
            capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout

    def log(self) -> str:
        try:
            return (self.directory / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop_server()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def cluster_for_test() -> Iterator[PostgresCluster]:
    """A running throwaway cluster, stopped afterwards. Skips the test with the reason when
    PostgreSQL is missing, and fails it under ``CI=true``, where a skip would hide a broken
    build."""
    import pytest

    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
