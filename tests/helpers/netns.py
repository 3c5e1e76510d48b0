"""Minimal network-namespace plumbing for tests that need a real, sealed network.

Names carry a random suffix so parallel runs do not collide; ``Netns.cleanup`` removes
everything that was created, and is called from fixtures so it runs also on failure.
Nothing here connects a namespace to the host's own network.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess


def have_netns() -> tuple[bool, str]:
    """Whether this process can build namespaces: root and the ``ip`` tool."""
    if os.geteuid() != 0:
        return False, "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return False, "needs iproute2 (the ip command)"
    return True, ""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


class Netns:
    """A set of namespaces and the veth pairs between them."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.names: list[str] = []

    def add(self, role: str) -> str:
        name = f"kz{role}{self.tag}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, a: str, a_addr: str, b: str, b_addr: str) -> None:
        """A veth pair between namespaces a and b with the given CIDR addresses."""
        index = len(self.names) + secrets.randbelow(1000)
        left, right = f"va{self.tag}{index}", f"vb{self.tag}{index}"
        sh("ip", "link", "add", left, "netns", a, "type", "veth", "peer", "name", right,
           "netns", b)
        sh("ip", "-n", a, "addr", "add", a_addr, "dev", left)
        sh("ip", "-n", b, "addr", "add", b_addr, "dev", right)
        sh("ip", "-n", a, "link", "set", left, "up")
        sh("ip", "-n", b, "link", "set", right, "up")

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", name, *args, check=False)

    def cleanup(self) -> None:
        for name in reversed(self.names):
            sh("ip", "netns", "delete", name, check=False)
        self.names.clear()
