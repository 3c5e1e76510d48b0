"""Bytes a TCP socket has received, as the kernel counts them (Linux ``TCP_INFO``).

Why the kernel's count and not the application's: over TLS the application sees bytes only
when a whole record (up to 16 KiB) has arrived and been decrypted. Under a 2 kB/s throttle
that is one read every eight seconds, so a flow that is plainly progressing looks dead, and a
throttled TLS handshake shows no progress at all. ``tcpi_bytes_received`` (Linux >= 4.1) counts
payload bytes as they arrive, handshake included.

On other systems, or an older kernel, ``bytes_received`` returns None and callers fall back to
the application's byte counts.
"""

from __future__ import annotations

import socket
import struct
from typing import Protocol

# Offset of tcpi_bytes_received in struct tcp_info (include/uapi/linux/tcp.h): 8 bytes of
# u8 fields, 24 u32 fields, then the u64s pacing_rate, max_pacing_rate, bytes_acked.
_BYTES_RECEIVED_OFFSET = 8 + 24 * 4 + 3 * 8
_INFO_LENGTH = 256


class SockOpt(Protocol):
    def getsockopt(self, level: int, option: int, buflen: int) -> bytes: ...


def bytes_received(sock: SockOpt | None) -> int | None:
    """Payload bytes received so far on ``sock``, or None where the kernel cannot say."""
    option = getattr(socket, "TCP_INFO", None)
    if sock is None or option is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, _INFO_LENGTH)
    except OSError:
        return None
    if len(info) < _BYTES_RECEIVED_OFFSET + 8:
        return None
    return int(struct.unpack_from("=Q", info, _BYTES_RECEIVED_OFFSET)[0])
