"""Start-up errors an operator can fix are one line and exit 2, not a traceback: the real
collector process, started on a port another process holds, on a file that is not a
database and on a PostgreSQL server that is not there."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.helpers.collector_process import cli
from tests.helpers.ports import free_port


async def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, out, err = await cli("serve", "--listen", f"127.0.0.1:{port}",
                                   "--database", str(tmp_path / "kuzot.sqlite"), timeout=30)
    assert code == 2
    assert "kuzot collector on" not in out  # it never said it was serving there
    assert err.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: error while attempting to bind on "
        f"address ('127.0.0.1', {port}): address already in use"]


async def test_a_file_that_is_not_a_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    database = tmp_path / "kuzot.sqlite"
    database.write_text("these are notes, not a database\n")
    code, out, err = await cli("serve", "--listen", f"127.0.0.1:{free_port()}",
                               "--database", str(database), timeout=30)
    assert code == 2 and "kuzot collector on" not in out
    assert err.strip().splitlines() == ["error: cannot open the database: file is not a database"]
    assert database.read_text() == "these are notes, not a database\n"  # left as it was


async def test_an_unreachable_postgresql_server_is_one_line_and_exit_2() -> None:
    closed = free_port()  # nothing listens there
    code, out, err = await cli("serve", "--listen", f"127.0.0.1:{free_port()}",
                               "--database", f"postgresql://kuzot@127.0.0.1:{closed}/kuzot",
                               timeout=60)
    assert code == 2 and "kuzot collector on" not in out
    [line] = err.strip().splitlines()
    assert line.startswith("error: cannot open the database: postgresql: ")
    assert f"127.0.0.1', {closed})" in line
