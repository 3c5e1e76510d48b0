"""Bodies at rest: compressed, read back byte for byte, older text rows still readable."""

from __future__ import annotations

import hashlib
import json
import random
from importlib import resources
from typing import Any

import aiosqlite
import asyncpg
import pytest

from collector.store import Store, is_postgres
from collector.store.body import ZLIB_V1, ZSTD_V1, pack, pack_zlib, unpack
from tests.collector.factory import measurement, stored

WORDS = "Кыргызстан жаңылыктары Бишкек Алматы сайлоо news court protest Ош «цитата» 🙂".split()


def page_measurement(seed: int) -> str:
    """A web_connectivity document with a 4 KiB page of words, as the probe uploads it."""
    rng = random.Random(seed)
    text = "".join(f'<p id="{rng.getrandbits(32):08x}">' + " ".join(
        rng.choice(WORDS) for _ in range(12)) + "</p>\n" for _ in range(40))
    document: dict[str, Any] = measurement()
    document["test_keys"]["requests"] = [{
        "request": {"url": document["input"], "headers": {"Host": "kloop.kg"}},
        "response": {"code": 200, "body": text, "headers": {"Content-Type": "text/html"}},
        "t0": rng.random(), "t": rng.random() + 1, "failure": None}]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("text", [
    "", "{}", '{"a":"\\u0000\\ud83d\\ude42 \\"q\\""}', "ключ: значение 🙂", "x" * 300_000,
    page_measurement(1),
])
def test_pack_then_unpack_gives_the_same_text(text: str) -> None:
    packed = pack(text)
    assert packed[0] == ZSTD_V1
    assert unpack(packed) == text
    assert unpack(memoryview(packed)) == text
    assert unpack(text) == text  # rows stored before compression are text
    older = pack_zlib(text.encode())  # rows stored before zstd: still read
    assert older[0] == ZLIB_V1
    assert unpack(older) == text


def test_a_page_measurement_shrinks_to_well_under_half() -> None:
    text = page_measurement(2)
    assert len(pack(text)) < len(text.encode()) * 0.4


def test_unknown_or_truncated_bodies_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        unpack(b"\x7f123")
    with pytest.raises(ValueError, match="unknown format"):
        unpack(b"")
    with pytest.raises(ValueError, match="truncated"):
        unpack(pack(page_measurement(3))[:-20])
    with pytest.raises(ValueError, match="truncated"):
        unpack(pack_zlib(page_measurement(3).encode())[:-20])


def test_the_released_dictionary_is_never_edited() -> None:
    """Stored rows need the exact bytes they were compressed with: a new dictionary is a new
    file and a new format byte."""
    data = resources.files("collector.store").joinpath("body_dictionary_v1.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == (
        "83755d0a31d66c52c3fb6ab8388e5602ba343be818e372767465c2c37494b948")


async def _stored_bytes(database: str, uid: str) -> int:
    if is_postgres(database):
        conn = await asyncpg.connect(database)
        try:
            return int(await conn.fetchval(
                "SELECT coalesce(octet_length(body_z), octet_length(body)) FROM measurement_bodies "
                "WHERE uid = $1", uid))
        finally:
            await conn.close()
    async with aiosqlite.connect(database) as db, db.execute(
            "SELECT length(CAST(body AS BLOB)) FROM measurements WHERE uid = ?",
            (uid,)) as cursor:
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def test_bodies_are_stored_compressed_and_read_back_exactly(
        store: Store, database: str) -> None:
    rows = [stored(uid=f"page-{i}", body=page_measurement(10 + i)) for i in range(5)]
    rows.append(stored(uid="escapes", body='{"s":"\\u0000 \\"😀\\" \\\\ ключ"}'))
    assert await store.add_measurements(rows) == [r.uid for r in rows]
    assert await store.measurement_bodies([r.uid for r in rows]) == {r.uid: r.body for r in rows}
    feed = await store.measurement_feed(0, 100)
    assert {r.body for r in feed} == {r.body for r in rows}
    for row in rows[:5]:
        assert await _stored_bytes(database, row.uid) < len(row.body.encode()) * 0.4


async def test_rows_of_either_format_read_back_side_by_side(store: Store) -> None:
    # A store written before zstd holds ZLIB_V1 bodies; new rows arrive beside them.
    bodies = [page_measurement(30 + i) for i in range(4)]
    rows = [stored(uid=f"fmt-{i}", body=b,
                   packed=pack_zlib(b.encode()) if i % 2 else pack(b))
            for i, b in enumerate(bodies)]
    assert await store.add_measurements(rows) == [r.uid for r in rows]
    assert await store.measurement_bodies([r.uid for r in rows]) == {r.uid: r.body for r in rows}
    feed = await store.measurement_feed(0, 100)
    assert {r.body for r in feed} == set(bodies)


async def test_rows_packed_before_the_store_read_back_exactly(store: Store) -> None:
    # Validation compresses each body on its worker thread and hands the bytes along; the
    # store writes them as they are, and packs rows that come without them itself.
    bodies = [page_measurement(20 + i) for i in range(4)]
    rows = [stored(uid=f"packed-{i}", body=b, packed=pack(b)) for i, b in enumerate(bodies)]
    rows += [stored(uid=f"plain-{i}", body=b) for i, b in enumerate(bodies)]
    assert await store.add_measurements(rows) == [r.uid for r in rows]
    assert await store.measurement_bodies([r.uid for r in rows]) == {r.uid: r.body for r in rows}
