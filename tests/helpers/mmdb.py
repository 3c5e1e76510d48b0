"""A minimal writer of MaxMind DB files (format 2.0), so tests can build a tiny GeoIP database.

Written from the public format description: a binary search tree over the address bits
(24-bit records, IPv6 tree with IPv4 networks under ``::/96``), a 16-byte separator, a data
section of typed values, and a metadata map after the ``\\xab\\xcd\\xefMaxMind.com`` marker. It
knows the types our records use (strings, unsigned integers, booleans, doubles, maps, arrays)
and does no pointer compression; tests read the result with the real ``maxminddb`` reader.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_BITS = 24
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


@dataclass(frozen=True)
class UInt:
    """An unsigned integer with an explicit MaxMind type (5=uint16, 6=uint32, 9=uint64)."""

    value: int
    type_code: int


def _control(type_code: int, size: int) -> bytes:
    if size < 29:
        first, extra = size, b""
    elif size < 29 + 256:
        first, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        first, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_code <= 7:
        return bytes([(type_code << 5) | first]) + extra
    return bytes([first, type_code - 7]) + extra


def encode(value: Any) -> bytes:
    """One value in the data-section encoding."""
    if isinstance(value, UInt):
        payload = value.value.to_bytes((value.value.bit_length() + 7) // 8, "big")
        return _control(value.type_code, len(payload)) + payload
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("only unsigned integers are supported")
        return encode(UInt(value, 6 if value < 2**32 else 9))
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(2, len(raw)) + raw
    if isinstance(value, dict):
        out = _control(7, len(value))
        for key, item in value.items():
            out += encode(str(key)) + encode(item)
        return out
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


class _Node:
    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: list[_Node | int | None] = [None, None]  # node, data offset, or empty


def _bits(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[int]:
    """The prefix bits of a network in the IPv6 tree (IPv4 lives under ::/96)."""
    if network.version == 4:
        value, length = int(network.network_address), 96 + network.prefixlen
    else:
        value, length = int(network.network_address), network.prefixlen
    return [(value >> (127 - i)) & 1 for i in range(length)]


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]],
               database_type: str = "Kuzot-Test") -> None:
    """Write ``{"10.0.0.0/8": {...record...}, ...}`` as a MaxMind DB file at ``path``."""
    data = b""
    offsets: dict[bytes, int] = {}
    root = _Node()
    for text, record in networks.items():
        encoded = encode(record)
        if encoded not in offsets:
            offsets[encoded] = len(data)
            data += encoded
        bits = _bits(ipaddress.ip_network(text))
        if not bits:
            raise ValueError("a /0 network is not supported")
        node = root
        for bit in bits[:-1]:
            child = node.children[bit]
            if not isinstance(child, _Node):
                fresh = _Node()
                fresh.children = [child, child]  # keep a covering record on both sides
                node.children[bit] = fresh
                child = fresh
            node = child
        node.children[bits[-1]] = offsets[encoded]
    nodes: list[_Node] = [root]
    index = {id(root): 0}
    for node in nodes:  # breadth-first numbering; the list grows while we walk it
        for child in node.children:
            if isinstance(child, _Node):
                index[id(child)] = len(nodes)
                nodes.append(child)
    count = len(nodes)

    def record(child: _Node | int | None) -> int:
        if child is None:
            return count
        if isinstance(child, _Node):
            return index[id(child)]
        return count + 16 + child

    tree = b"".join(record(n.children[0]).to_bytes(3, "big") + record(n.children[1]).to_bytes(
        3, "big") for n in nodes)
    if count + 16 + len(data) >= 2**RECORD_BITS:
        raise ValueError("too much data for 24-bit records")
    metadata = {
        "node_count": UInt(count, 6),
        "record_size": UInt(RECORD_BITS, 5),
        "ip_version": UInt(6, 5),
        "database_type": database_type,
        "languages": ["en"],
        "binary_format_major_version": UInt(2, 5),
        "binary_format_minor_version": UInt(0, 5),
        "build_epoch": UInt(int(time.time()), 9),
        "description": {"en": "Kuzot test database"},
    }
    path.write_bytes(tree + b"\x00" * 16 + data + METADATA_MARKER + encode(metadata))
