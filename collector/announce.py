"""Signing the endpoint announcements heartbeat answers carry (``probe.daemon.announce``).

When the operator must move the collector (its addresses are blocked, a host is lost), the
new endpoints go in ``announce.endpoints`` of this collector's config with a higher
``announce.serial``; every probe that still gets a heartbeat through learns them, checks the
signature with the public key it was given at ``init``, and fails over to them when the old
endpoints stop answering. The private key stays with the operator (``announce.key_file``,
made by ``python -m collector endpoints-key generate``).

An announcement is signed again when half of its ``valid_for`` has passed, so a collector
that runs for months never hands out an expired one.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from probe.core.announcement import MAX_ENDPOINTS, encode_payload
from probe.core.typed_config import ConfigError, checked, duration_field, is_http_url, positive


def _name(value: object) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= 40 and value.replace("-", "").isalnum()
    return None if ok else "must be 1-40 letters, digits or dashes"


def _front(value: object) -> str | None:
    ok = value is None or (isinstance(value, str) and 0 < len(value) <= 253
                           and not any(c in value for c in "/:@ \t"))
    return None if ok else "must be a bare host name or IPv4 address"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint to announce, checked as the probe checks its own (probe.daemon.endpoints)."""

    name: str = field(metadata={"check": _name})
    url: str = field(metadata={"check": is_http_url})
    front: str | None = field(default=None, metadata={"check": _front})

    def to_wire(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url} | (
            {"front": self.front} if self.front else {})


def _endpoints(value: tuple[Endpoint, ...]) -> str | None:
    if len(value) > MAX_ENDPOINTS:
        return f"at most {MAX_ENDPOINTS} endpoints"
    if len({e.name for e in value}) != len(value):
        return "endpoint names must be unique"
    return None


@dataclass(frozen=True, slots=True)
class AnnounceConfig:
    # PEM file of the Ed25519 private key; null: heartbeat answers announce nothing.
    key_file: str | None = None
    # Raise it with every change of ``endpoints``: probes apply only a higher serial.
    serial: int = checked(1, positive)
    valid_for: float = duration_field(30 * 86400.0, positive)
    endpoints: tuple[Endpoint, ...] = checked((), _endpoints)


def generate(path: Path) -> str:
    """Write a new private key to ``path`` (owner-only, never overwritten); return the public
    key as probes' ``collector.announce_key`` takes it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return public_half(key)


def public_half(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError("announce.key_file", f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError("announce.key_file", f"not a PEM private key: {path}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("announce.key_file", "not an Ed25519 key")
    return key


@dataclass
class Announcer:
    """The signed announcement for heartbeat answers, re-signed before it grows old."""

    config: AnnounceConfig
    key: Ed25519PrivateKey
    _signed: dict[str, str] = field(default_factory=dict)
    _expires: datetime | None = None

    def current(self, now: datetime) -> dict[str, Any]:
        valid_for = timedelta(seconds=self.config.valid_for)
        if self._expires is None or self._expires - now < valid_for / 2:
            self._expires = (now + valid_for).replace(microsecond=0)
            payload = encode_payload(self.config.serial, self._expires,
                                     [e.to_wire() for e in self.config.endpoints])
            self._signed = {"payload": base64.b64encode(payload).decode(),
                            "signature": base64.b64encode(self.key.sign(payload)).decode()}
        return self._signed


def announcer(config: AnnounceConfig) -> Announcer | None:
    """The announcer a config asks for: None without a key file or without endpoints."""
    if config.key_file is None or not config.endpoints:
        return None
    return Announcer(config, load_key(config.key_file))
