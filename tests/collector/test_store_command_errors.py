"""What ``reanalyze`` and ``archive`` print when the store they are given cannot be opened: one
line each, exit 1 (2 for the config), nothing on stdout. The two commands open the store the
same way but have always worded a failure to open differently ("database unavailable: " before
the reason for ``reanalyze``, the reason alone for ``archive``); operators' scripts may match
these lines, so they are pinned here to the byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.ports import free_port
from tests.helpers.processes import run_python

COMMANDS = {"reanalyze": ["reanalyze", "--since", "2024-05-01"], "archive": ["archive"]}
# What each command says before the reason a store or its archive target did not open.
UNAVAILABLE = {"reanalyze": "error: database unavailable: ", "archive": "error: "}


def _config(tmp_path: Path, storage: str = "") -> Path:
    config = tmp_path / "collector.yaml"
    config.write_text(f"storage: {{archive_after: 1d, archive_dir: {tmp_path / 'archive'}"
                      f"{storage}}}\n")
    return config


async def _run(command: str, *args: str, without_boto3: bool = False) -> tuple[int, str, str]:
    argv = [*COMMANDS[command], *args]
    if not without_boto3:
        return await run_python("-m", "collector", *argv)
    # As on a collector installed without the [s3] extra: ``import boto3`` fails.
    return await run_python("-c", "import sys; sys.modules['boto3'] = None; "
                            "from collector.cli import main; "
                            f"raise SystemExit(main({argv!r}))")


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_missing_config(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert await _run(command, "--config", str(missing)) == (
        2, "", f"config error: cannot read {missing}: No such file or directory\n")


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_bad_config(command: str, tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text("storage: {archive_after: 1d}\nnope: 1\n")
    assert await _run(command, "--config", str(config)) == (
        2, "", "config error: nope: unknown key\n")


@pytest.mark.parametrize("command", COMMANDS)
async def test_an_unreachable_postgresql(command: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    dsn = f"postgresql://postgres@127.0.0.1:{port}/kuzot"
    assert await _run(command, "--config", str(_config(tmp_path)), "--database", dsn) == (
        1, "", f"{UNAVAILABLE[command]}postgresql: ConnectionRefusedError: [Errno 111] "
               f"Connect call failed ('127.0.0.1', {port})\n")


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_sqlite_path_that_does_not_exist(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "kuzot.sqlite"
    assert await _run(command, "--config", str(_config(tmp_path)),
                      "--database", str(missing)) == (
        1, "", f"error: database unavailable: {missing} does not exist "
               "(give the collector's --config or --database)\n")
    assert not missing.parent.exists()


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_bucket_without_boto3(command: str, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s\n")
    config = _config(tmp_path, ", archive_url: 's3://b/x', s3_endpoint: 'http://127.0.0.1:1', "
                               "s3_region: us-east-1, s3_access_key_id: k, "
                               "s3_secret_access_key_file: secret")
    database = tmp_path / "kuzot.sqlite"
    database.touch()  # an empty file is an empty SQLite database
    assert await _run(command, "--config", str(config), "--database", str(database),
                      without_boto3=True) == (
        1, "", f"{UNAVAILABLE[command]}storage.archive_url names a bucket but boto3 is not "
               "installed (pip install 'kuzot[s3]')\n")


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_file_that_is_not_a_sqlite_database(command: str, tmp_path: Path) -> None:
    database = tmp_path / "kuzot.sqlite"
    database.write_bytes(b"not a database, " * 512)
    code, out, err = await _run(command, "--config", str(_config(tmp_path)),
                                "--database", str(database))
    assert (code, out) == (1, "")
    assert err == f"error: database unavailable: {database}: file is not a database\n"
    assert database.read_bytes() == b"not a database, " * 512
