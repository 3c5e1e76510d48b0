"""Network namespaces for tests that need a real, sealed network: the plumbing they share.

Every namespace lab in the suite builds on this module: the emulated censoring network
(``tests/lab``), the chain of routers (``tests/helpers/chainlab.py``) and the offline host of
``tests/probe/nettests/connectivity/test_connectivity.py``. It gives

* names ``<lab id>-<role>`` whose lab id carries the owner's process id and a random suffix,
  so parallel runs never collide and a stale lab can be told from a live one;
* veth pairs whose two ends are born inside namespaces, so nothing is ever attached to the
  host's own network;
* per-namespace sysctls (through /proc, without procps) and resolver files (``ip netns exec``
  bind-mounts ``/etc/netns/<name>/resolv.conf`` over ``/etc/resolv.conf``);
* a teardown that removes every namespace and file of the lab and is safe to call twice, so
  fixtures can call it on every exit path;
* ``require``: a test that cannot build namespaces here is skipped with the reason, except
  under ``CI=true``, where a skipped lab would hide a broken build and the test fails instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

NETNS_ETC = Path("/etc/netns")


class NetnsError(RuntimeError):
    """A namespace command failed."""


def run(*args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run one command; on failure (with ``check``) raise NetnsError with its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(args)} failed ({result.returncode}): "
                         f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def exec_prefix(name: str) -> list[str]:
    """The command prefix that runs a program inside namespace ``name``."""
    return ["ip", "netns", "exec", name]


def unavailable(*tools: str) -> str | None:
    """Why namespaces (and ``tools`` besides ``ip``) cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian packages iproute2, iptables)"
    probe = f"kzcheck-{os.getpid()}-{secrets.token_hex(3)}"
    created = run("ip", "netns", "add", probe, check=False)
    run("ip", "netns", "del", probe, check=False)
    if created.returncode != 0:
        return f"cannot create network namespaces: {created.stderr.strip()}"
    return None


def when_unavailable(reason: str | None, ci: str | None) -> tuple[str, str] | None:
    """("skip" | "fail", message) for a lab that cannot run, or None when it can."""
    if reason is None:
        return None
    if ci == "true":
        return "fail", f"CI=true and the lab cannot run: {reason}"
    return "skip", reason


def require(*tools: str) -> None:
    """Skip the calling test (fail it under ``CI=true``) when namespaces cannot be built."""
    decision = when_unavailable(unavailable(*tools), os.environ.get("CI"))
    if decision is None:
        return
    action, message = decision
    if action == "fail":
        pytest.fail(message)
    pytest.skip(message)


def named(prefix: str) -> list[str]:
    """Every namespace on this machine whose name starts with ``prefix``."""
    listing = run("ip", "netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listing if line.startswith(prefix)]


def owner_alive(lab_id: str, prefix: str) -> bool:
    """Whether the process that made the lab ``lab_id`` still runs."""
    try:
        pid = int(lab_id.removeprefix(prefix).split("-")[0])
    except ValueError:
        return False
    return Path(f"/proc/{pid}").exists()


@dataclass(frozen=True, slots=True)
class Namespaces:
    """The namespaces of one lab, one per role, named ``<lab_id>-<role>``."""

    lab_id: str
    roles: tuple[str, ...]

    @classmethod
    def new(cls, prefix: str, roles: tuple[str, ...]) -> Namespaces:
        return cls(f"{prefix}{os.getpid()}-{secrets.token_hex(3)}", roles)

    def name(self, role: str) -> str:
        if role not in self.roles:
            raise NetnsError(f"no namespace for role {role!r} in {self.lab_id}")
        return f"{self.lab_id}-{role}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.name(role) for role in self.roles)

    def create(self, setup: Callable[[Namespaces], None] | None = None) -> None:
        """Add every namespace with its loopback up, then run ``setup`` (links, addresses,
        routes); if anything fails, remove everything made so far and raise."""
        try:
            for name in self.names:
                run("ip", "netns", "add", name)
                run("ip", "-n", name, "link", "set", "lo", "up")
            if setup is not None:
                setup(self)
        except Exception:
            self.destroy()
            raise

    def veth(self, a: str, a_link: str, b: str, b_link: str) -> None:
        """A veth pair between roles ``a`` and ``b``, each end born in its namespace."""
        run("ip", "link", "add", a_link, "netns", self.name(a), "type", "veth", "peer", "name",
            b_link, "netns", self.name(b))

    def link(self, a: str, a_link: str, a_address: str, b: str, b_link: str,
             b_address: str) -> None:
        """A veth pair with one address (CIDR) on each end, both ends up."""
        self.veth(a, a_link, b, b_link)
        for role, link, address in ((a, a_link, a_address), (b, b_link, b_address)):
            self.ip(role, "addr", "add", address, "dev", link)
            self.ip(role, "link", "set", link, "up")

    def ip(self, role: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``ip -n <namespace> ARGS``."""
        return run("ip", "-n", self.name(role), *args)

    def run(self, role: str, *command: str, check: bool = False,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the namespace of ``role``; its exit code is the caller's to
        judge unless ``check``."""
        return run(*exec_prefix(self.name(role)), *command, check=check, timeout=timeout)

    def sysctl(self, role: str, settings: dict[str, str]) -> None:
        """Set the namespace's own sysctls through /proc, in one call."""
        script = "; ".join(f"echo {value} > /proc/sys/{key.replace('.', '/')}"
                           for key, value in settings.items())
        self.run(role, "sh", "-c", f"set -e; {script}", check=True)

    def resolv_conf(self, role: str, nameserver: str,
                    options: str = "timeout:1 attempts:1") -> None:
        """The resolver that programs run with ``ip netns exec`` use in this namespace."""
        directory = NETNS_ETC / self.name(role)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(f"nameserver {nameserver}\noptions {options}\n")

    def destroy(self) -> None:
        """Delete the namespaces and their files; safe to call twice."""
        existing = set(named(self.lab_id))
        for name in self.names:
            if name in existing:
                run("ip", "netns", "del", name, check=False)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
