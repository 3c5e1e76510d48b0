"""Measurement bodies at rest: zstd with a shared dictionary, about a fifth of the JSON.

A measurement's JSON repeats the same keys, header names and structure as every other one, and
alone it is too short for a compressor to learn them; a preset dictionary
(``body_dictionary_v1.json``, a web_connectivity measurement in the wire format with its page
emptied and its values made generic) gives the compressor that structure up front.

A stored body is either the JSON text itself (rows stored before compression, SQLite rows of
any age can be text) or bytes: one format byte, then the compressed UTF-8 text. The format
byte names the codec and its dictionary, so a dictionary is never edited once released: a
better one is a new file and a new byte, and ``unpack`` keeps reading every older one.
``unpack(pack(text)) == text`` for every string: the read API answers byte for byte what was
stored.

Bodies are written as ``ZSTD_V1`` (zstd level 3, the v1 dictionary as raw content): on the
realistic measurements of ``bench/ingest_stages.py`` it compresses in about a third of the CPU
time of ``ZLIB_V1`` (zlib level 6, the same dictionary, what bodies were written as before)
and decompresses in a third, for 7 % more bytes (BENCHMARKS.md, "Compressing bodies").
``ZLIB_V1`` rows stay readable.
"""

from __future__ import annotations

import threading
import zlib
from importlib import resources

import zstandard

ZLIB_V1 = 0x01  # raw deflate (no zlib header or checksum), level 6, dictionary v1
ZSTD_V1 = 0x02  # a zstd frame (content size, no checksum), level 3, dictionary v1 as raw content
_ZLIB_LEVEL = 6
_ZSTD_LEVEL = 3
_DICTIONARY_V1 = resources.files("collector.store").joinpath(
    "body_dictionary_v1.json").read_bytes()
_ZSTD_DICTIONARY_V1 = zstandard.ZstdCompressionDict(
    _DICTIONARY_V1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_ZSTD_DICTIONARY_V1.precompute_compress(level=_ZSTD_LEVEL)
FORMATS = (ZLIB_V1, ZSTD_V1)
# zstd's (de)compressor objects are not safe to share between threads, and making one per body
# costs more than compressing it: one each per thread (validation runs on worker threads).
_codecs = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(
            level=_ZSTD_LEVEL, dict_data=_ZSTD_DICTIONARY_V1, write_checksum=False,
            write_content_size=True, write_dict_id=False)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_codecs, "decompressor", None)
    if decompressor is None:
        decompressor = _codecs.decompressor = zstandard.ZstdDecompressor(
            dict_data=_ZSTD_DICTIONARY_V1)
    return decompressor


def pack(text: str) -> bytes:
    """The stored form of a JSON document."""
    return pack_utf8(text.encode("utf-8"))


def pack_utf8(data: bytes) -> bytes:
    """The stored form of a JSON document already encoded as UTF-8 (validation has the bytes:
    it measures them). zstd lets other threads run while it compresses, so packing on a worker
    thread runs beside the event loop, not in its turn."""
    return bytes((ZSTD_V1,)) + _compressor().compress(data)


def pack_zlib(data: bytes) -> bytes:
    """``data`` in the older ``ZLIB_V1`` form: what rows stored before ``ZSTD_V1`` hold (tests
    and benchmarks make such rows with it; nothing writes it any more)."""
    compressor = zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, -15, zdict=_DICTIONARY_V1)
    return bytes((ZLIB_V1,)) + compressor.compress(data) + compressor.flush()


def unpack(stored: str | bytes | memoryview) -> str:
    """The JSON document from its stored form (text as it was, or ``pack``'s bytes)."""
    if isinstance(stored, str):
        return stored
    data = bytes(stored)
    if not data or data[0] not in FORMATS:
        raise ValueError(f"stored body: unknown format byte {data[:1]!r}")
    if data[0] == ZSTD_V1:
        return _unpack_zstd(data)
    decompressor = zlib.decompressobj(-15, zdict=_DICTIONARY_V1)
    raw = decompressor.decompress(data[1:]) + decompressor.flush()
    if not decompressor.eof:
        raise ValueError("stored body: truncated")
    return raw.decode("utf-8")


def _unpack_zstd(data: bytes) -> str:
    # The frame records its content size (``write_content_size``), so a damaged or cut frame
    # fails here rather than giving fewer bytes.
    try:
        return _decompressor().decompress(data[1:]).decode("utf-8")
    except zstandard.ZstdError as exc:
        raise ValueError(f"stored body: truncated or damaged ({exc})") from exc
