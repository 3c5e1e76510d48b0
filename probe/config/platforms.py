"""Platform endpoint lists: YAML -> frozen dataclasses, errors with the key path.

The data-centre addresses, host names and ports of each platform live in
``configs/platforms.yaml`` and not in code, so they can be updated without a release and
pointed at lab hosts in tests. Each platform is a set of named endpoint groups; a group is
measured either as web connectivity (``urls``) or as plain reachability of hosts/addresses on
ports (``hosts``, ``addresses``). Group names are fixed for the platforms whose OONI test keys
we emit (``telegram``, ``whatsapp``, ``signal``, ``facebook_messenger``), because those keys
are computed per group.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from probe.config.probe_timeouts import Timeouts
from probe.core.typed_config import ConfigError, build, checked, is_http_url, join, read_yaml

PLATFORMS = ("telegram", "whatsapp", "signal", "facebook_messenger", "youtube", "tiktok",
             "instagram", "x")
"""Platforms the probe knows; the first four are OONI's instant-messaging tests."""

OONI_GROUPS: dict[str, frozenset[str]] = {
    "telegram": frozenset({"datacenters", "web"}),
    "whatsapp": frozenset({"endpoints", "registration", "web"}),
    "signal": frozenset({"backend"}),
    "facebook_messenger": frozenset({"endpoints"}),
}
"""The groups each OONI-compatible platform must have, and may only have."""


def _url(value: str) -> str | None:
    return is_http_url(value)


def _address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "not an IP address"
    return None


def _host(value: str) -> str | None:
    bad = not value or any(c in value for c in "/: ") or _address(value) is None
    return "not a host name (addresses go under addresses)" if bad else None


def _port(value: int) -> str | None:
    return None if 0 < value < 65536 else "not a TCP port"


def _network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "not a network like 157.240.0.0/16"
    return None


_ITEM_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "urls": _url, "hosts": _host, "addresses": _address, "ports": _port, "networks": _network,
}


@dataclass(frozen=True, slots=True)
class EndpointGroup:
    """Endpoints that play one role for a platform (its web app, its data centres, ...).

    ``need`` says how many must work for the group to work: ``any`` (Telegram's data centres:
    one reachable DC is enough for the app) or ``all`` (Signal's backend services).
    ``exchange`` is what is done on each host/address after TCP connect: nothing
    (``connect``) or an HTTP GET whose any response counts (``http``, as OONI's Telegram test).
    ``networks`` are the address blocks a platform's DNS answers should fall in (OONI checks
    Facebook's answers against AS32934); an answer outside them is DNS inconsistency.
    """

    urls: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    ports: tuple[int, ...] = (443,)
    exchange: Literal["connect", "http"] = "connect"
    need: Literal["any", "all"] = "all"
    networks: tuple[str, ...] = ()
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class Platform:
    groups: dict[str, EndpointGroup] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlatformsConfig:
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_addresses: int = checked(2, lambda v: None if v > 0 else "must be positive")
    platforms: dict[str, Platform] = field(default_factory=dict)


def _check(config: PlatformsConfig) -> None:
    for name, platform in config.platforms.items():
        path = join("platforms", name)
        if name not in PLATFORMS:
            raise ConfigError(path, f"unknown platform (known: {', '.join(PLATFORMS)})")
        if not platform.groups:
            raise ConfigError(join(path, "groups"), "must name at least one group")
        for group_name, group in platform.groups.items():
            group_path = join(join(path, "groups"), group_name)
            if not (group.urls or group.hosts or group.addresses):
                raise ConfigError(group_path, "needs at least one of urls, hosts, addresses")
            if not group.ports:
                raise ConfigError(join(group_path, "ports"), "must list at least one port")
            for key, check in _ITEM_CHECKS.items():
                for index, item in enumerate(getattr(group, key)):
                    message = check(item)
                    if message:
                        raise ConfigError(join(join(group_path, key), index), message)
        expected = OONI_GROUPS.get(name)
        if expected is None:
            continue
        for label in platform.groups:
            if label not in expected:
                raise ConfigError(join(join(path, "groups"), label),
                                  f"unknown group (expected: {', '.join(sorted(expected))})")
        missing = sorted(expected - set(platform.groups))
        if missing:
            raise ConfigError(join(join(path, "groups"), missing[0]), "required group is missing")


def build_platforms(data: object) -> PlatformsConfig:
    """Build and cross-check a platforms config from parsed YAML."""
    config = build(PlatformsConfig, data)
    _check(config)
    return config


def load(path: str | Path) -> PlatformsConfig:
    """Load ``path``; a group's ``ca_file`` is taken relative to the file."""
    file = Path(path)
    config = build_platforms(read_yaml(file))
    platforms = {}
    for name, platform in config.platforms.items():
        groups = {}
        for group_name, group in platform.groups.items():
            if group.ca_file is not None:
                ca = file.parent / group.ca_file
                if not ca.is_file():
                    raise ConfigError(f"platforms.{name}.groups.{group_name}.ca_file",
                                      f"no such file: {group.ca_file}")
                group = replace(group, ca_file=str(ca))
            groups[group_name] = group
        platforms[name] = replace(platform, groups=groups)
    return replace(config, platforms=platforms)

