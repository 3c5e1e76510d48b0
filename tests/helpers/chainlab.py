"""A chain of network namespaces with real router hops, for platform and censor-trace tests.

```
 client 10.77.0.2 -- r1 -- r2 -- r3 -- world 46.36.199.2 (+ 46.36.200.0/24 services)
        (ISP resolver on r1: 10.77.0.1)        (public resolver 46.36.200.53)
```
Each router forwards and answers ICMP time-exceeded without rate limit, so a TTL-limited
trace sees hop 1 = 10.77.0.1, hop 2 = 10.77.1.2, hop 3 = 10.77.2.2 and the world's services at
hop 4. The lab is sealed: no link to the host's namespace and no route out. Client-side
addresses are private as a home network is; world addresses are public-looking unicast
(46.36.199.0/24, 46.36.200.0/24), which the host does not use (it has 192.0.2.0/24, fd00::/64
and resolver 10.255.255.53).

The namespace plumbing is the suite's shared one (``tests.helpers.netns``): names carry the
owner's process id and a random suffix so parallel runs never collide, and ``down()`` removes
every namespace and the per-namespace ``/etc/netns/<name>/resolv.conf`` it wrote, whatever
happened. Sockets for servers are opened *inside* a namespace from a helper thread (``setns``
switches only the calling thread) and then served by the test's own event loop.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Callable

from tests.helpers.netns import Namespaces, require

CLONE_NEWNET = 0x40000000
ROLES = ("client", "r1", "r2", "r3", "world")
ROUTER_HOPS = {1: "10.77.0.1", 2: "10.77.1.2", 3: "10.77.2.2"}
ISP_RESOLVER = "10.77.0.1"
PUBLIC_RESOLVER = "46.36.200.53"
SERVER_HOP = 4


def require_lab_tools() -> None:
    """Skip the calling test (fail it under CI=true) when the chain cannot be built here."""
    require("iptables")


class ChainLab:
    """client -- r1 -- r2 -- r3 -- world, built by ``up()`` and always removed by ``down()``."""

    def __init__(self) -> None:
        self.net = Namespaces.new("kzchain-", ROLES)
        self.ns = {role: self.net.name(role) for role in ROLES}

    @property
    def client(self) -> str:
        return self.ns["client"]

    @property
    def world(self) -> str:
        return self.ns["world"]

    def ip(self, role: str, *args: str) -> None:
        self.net.ip(role, *args)

    def exec(self, role: str, *command: str,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.net.run(role, *command, check=check)

    def up(self, services: tuple[str, ...]) -> None:
        """Build the chain; ``services`` are the world's /32 addresses in 46.36.200.0/24."""
        self.net.create()
        self.net.link("client", "up0", "10.77.0.2/24", "r1", "down0", "10.77.0.1/24")
        self.net.link("r1", "up1", "10.77.1.1/24", "r2", "down1", "10.77.1.2/24")
        self.net.link("r2", "up2", "10.77.2.1/24", "r3", "down2", "10.77.2.2/24")
        self.net.link("r3", "up3", "46.36.199.1/24", "world", "down3", "46.36.199.2/24")
        for address in services:
            self.ip("world", "addr", "add", f"{address}/32", "dev", "lo")
        self.ip("client", "route", "add", "default", "via", "10.77.0.1")
        self.ip("r1", "route", "add", "default", "via", "10.77.1.2")
        self.ip("r2", "route", "add", "default", "via", "10.77.2.2")
        self.ip("r2", "route", "add", "10.77.0.0/24", "via", "10.77.1.1")
        self.ip("r3", "route", "add", "10.77.0.0/16", "via", "10.77.2.1")
        self.ip("r3", "route", "add", "46.36.200.0/24", "via", "46.36.199.2")
        self.ip("world", "route", "add", "10.77.0.0/16", "via", "46.36.199.1")
        for router in ("r1", "r2", "r3"):
            self.net.sysctl(router, {"net.ipv4.ip_forward": "1",
                                     "net.ipv4.icmp_ratelimit": "0",
                                     "net.ipv4.icmp_msgs_per_sec": "10000"})
        self.net.resolv_conf("client", ISP_RESOLVER)
        self.net.resolv_conf("world", PUBLIC_RESOLVER)

    def down(self) -> None:
        self.net.destroy()

    def iptables(self, role: str, *rule: str) -> None:
        self.exec(role, "iptables", "-w", *rule)

    def flush_rules(self) -> None:
        for router in ("r1", "r2", "r3"):
            self.exec(router, "iptables", "-w", "-F", check=False)

    def socket_in(self, role: str, family: int, kind: int, address: tuple[str, int],
                  listen: bool = True) -> socket.socket:
        """A socket created and bound inside namespace ``role`` (see the module docstring)."""
        return in_namespace(self.ns[role], lambda: _bound(family, kind, address, listen))


def _bound(family: int, kind: int, address: tuple[str, int], listen: bool) -> socket.socket:
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    if listen and kind == socket.SOCK_STREAM:
        sock.listen(128)
    sock.setblocking(False)
    return sock


def in_namespace(name: str, work: Callable[[], socket.socket]) -> socket.socket:
    """Run ``work`` in a thread that has joined network namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: list[socket.socket] = []
    errors: list[BaseException] = []

    def target() -> None:
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
