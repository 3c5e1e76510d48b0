"""The admin command: ``python -m collector token issue|revoke|list`` on both stores."""

from __future__ import annotations

import aiohttp

from collector.api.tokens import token_hash
from collector.store import open_store
from tests.collector.factory import measurement
from tests.helpers.collector_process import cli, serve


async def test_issue_list_revoke(database: str) -> None:
    code, token, err = await cli("token", "issue", "--probe-id", "bishkek-1",
                                 "--database", database)
    assert code == 0, err
    token = token.strip()
    assert token.startswith("kz_") and len(token) > 40
    code, listed, _ = await cli("token", "list", "--database", database)
    assert code == 0
    [line] = listed.splitlines()
    assert line.startswith("bishkek-1\t") and line.endswith("\tactive")
    assert token not in listed
    store = await open_store(database)
    try:
        # Only the hash is stored, never the token itself.
        assert await store.probe_for_token(token_hash(token)) == ("bishkek-1", False)
    finally:
        await store.close()

    async with serve("--database", database) as collector, aiohttp.ClientSession() as session:
        url = collector.base + "/api/v1/measurements"
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(url, json=measurement(), headers=headers) as response:
            assert response.status == 200
        code, out, err = await cli("token", "revoke", "--probe-id", "bishkek-1",
                                   "--database", database)
        assert (code, out.strip()) == (0, "revoked bishkek-1"), err
        async with session.post(url, json=measurement(), headers=headers) as response:
            assert response.status == 403
    code, listed, _ = await cli("token", "list", "--database", database)
    assert "\trevoked 20" in listed
    code, _, err = await cli("token", "revoke", "--probe-id", "bishkek-1", "--database",
                             database)
    assert (code, err.strip()) == (1, "error: no active token for bishkek-1")


async def test_bad_input_exits_2_with_a_reason(tmp_path: object) -> None:
    database = f"{tmp_path}/k.sqlite"
    code, _, err = await cli("token", "issue", "--probe-id", "has space", "--database",
                             database)
    assert (code, err.strip()) == (2, "error: --probe-id: 1-64 characters of [A-Za-z0-9._-]")
    code, _, err = await cli("token", "issue", "--database", database)
    assert (code, err.strip()) == (2, "error: --probe-id is required")
    code, _, err = await cli("token", "list", "--database", "mysql://x")
    assert code == 2 and err.startswith("config error: --database: not a postgresql:// DSN")
