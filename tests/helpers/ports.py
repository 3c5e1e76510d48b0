"""Loopback TCP ports for tests and benches: the one place a free port comes from.

The kernel picks a port for a socket bound to port 0; the socket is closed before the port is
returned, so nothing listens there: a connection to it is refused until a server the test starts
binds it. The same call gives a port to serve on and a port known to be closed.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on at the time of the call."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
