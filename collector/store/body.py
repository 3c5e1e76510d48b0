"""Measurement bodies at rest: zlib with a shared dictionary, about a third of the JSON.

A measurement's JSON repeats the same keys, header names and structure as every other one, and
alone it is too short for zlib to learn them; a preset dictionary (``body_dictionary_v1.json``,
a web_connectivity measurement in the wire format with its page emptied and its values made
generic) gives the compressor that structure up front.

A stored body is either the JSON text itself (rows stored before compression, SQLite rows of
any age can be text) or bytes: one format byte, then the compressed UTF-8 text. The format
byte names the codec and its dictionary, so a dictionary is never edited once released: a
better one is a new file and a new byte, and ``unpack`` keeps reading every older one.
``unpack(pack(text)) == text`` for every string: the read API answers byte for byte what was
uploaded.
"""

from __future__ import annotations

import zlib
from importlib import resources

ZLIB_V1 = 0x01  # raw deflate (no zlib header or checksum), level 6, dictionary v1
_LEVEL = 6
_DICTIONARIES = {
    ZLIB_V1: resources.files("collector.store").joinpath("body_dictionary_v1.json").read_bytes(),
}


def pack(text: str) -> bytes:
    """The stored form of a JSON document."""
    return pack_utf8(text.encode("utf-8"))


def pack_utf8(data: bytes) -> bytes:
    """The stored form of a JSON document already encoded as UTF-8 (validation has the bytes:
    it measures them). zlib lets other threads run while it compresses, so packing on a worker
    thread runs beside the event loop, not in its turn."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15, zdict=_DICTIONARIES[ZLIB_V1])
    return bytes((ZLIB_V1,)) + compressor.compress(data) + compressor.flush()


def unpack(stored: str | bytes | memoryview) -> str:
    """The JSON document from its stored form (text as it was, or ``pack``'s bytes)."""
    if isinstance(stored, str):
        return stored
    data = bytes(stored)
    if not data or data[0] not in _DICTIONARIES:
        raise ValueError(f"stored body: unknown format byte {data[:1]!r}")
    decompressor = zlib.decompressobj(-15, zdict=_DICTIONARIES[data[0]])
    raw = decompressor.decompress(data[1:]) + decompressor.flush()
    if not decompressor.eof:
        raise ValueError("stored body: truncated")
    return raw.decode("utf-8")
