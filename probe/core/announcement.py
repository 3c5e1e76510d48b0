"""The wire format of signed endpoint announcements, shared by the collector that signs them
(``collector.announce``) and the probe that believes them (``probe.daemon.announce``).

A censor that blocks the collector's addresses would otherwise cut every probe off until each
volunteer edits a config by hand. The collector's heartbeat answer may carry an
``endpoints_announcement``: a payload (JSON bytes, base64) and an Ed25519 signature of exactly
those bytes, made with the operator's private key. The probe got the public half at ``init``
(``collector.announce_key``) and believes an announcement only when

- the signature verifies with that key (unsigned or badly signed: refused),
- its ``serial`` is higher than the serial of the announcement it applied last (an older or
  the same announcement sent again, e.g. by someone replaying a captured answer, changes
  nothing: only a newer one does),
- its ``expires`` time has not passed (an announcement is not a permanent licence to redirect).

Signing raw bytes, not re-encoded JSON, means probe and collector need no canonical form.
Endpoints travel as ``{name, url, front?}`` objects; the probe checks them as it checks its
configured endpoints.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FIELD = "endpoints_announcement"  # the key of the heartbeat answer
MAX_ENDPOINTS = 8  # an announcement longer than this is refused, not cut
MAX_PAYLOAD = 8192  # bytes of the decoded payload
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AnnouncementError(ValueError):
    """Why an announcement was refused (logged; the probe keeps the endpoints it has)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """What a verified (or kept) announcement says; endpoints not yet checked as endpoints."""

    serial: int
    expires: datetime
    endpoints: tuple[dict[str, Any], ...]


def check_public_key(value: str) -> str | None:
    """Config check of ``collector.announce_key``: base64 of a raw 32-byte Ed25519 key."""
    try:
        public_key(value)
    except AnnouncementError as exc:
        return str(exc)
    return None


def public_key(value: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AnnouncementError("announce key is not base64") from exc
    if len(raw) != 32:
        raise AnnouncementError("announce key must be a raw 32-byte Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def encode_payload(serial: int, expires: datetime, endpoints: list[dict[str, str]]) -> bytes:
    """The bytes the collector signs."""
    return json.dumps({"serial": serial, "expires": expires.strftime(TIME_FORMAT),
                       "endpoints": endpoints}, separators=(",", ":")).encode()


def parse_payload(payload: bytes) -> Payload:
    """The announcement in verified ``payload`` bytes (or kept JSON); AnnouncementError when
    it is malformed."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnouncementError("payload is not JSON") from exc
    if not isinstance(document, dict):
        raise AnnouncementError("payload is not a JSON object")
    serial = document.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 1:
        raise AnnouncementError("serial must be a positive integer")
    try:
        expires = datetime.strptime(str(document.get("expires")), TIME_FORMAT).replace(
            tzinfo=UTC)
    except ValueError as exc:
        raise AnnouncementError(f"expires must look like 2026-01-31T00:00:00Z: {exc}") from exc
    items = document.get("endpoints")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ENDPOINTS \
            or not all(isinstance(item, dict) for item in items):
        raise AnnouncementError(f"endpoints must be a list of 1 to {MAX_ENDPOINTS} objects")
    return Payload(serial, expires, tuple(items))


def verify(message: object, key: Ed25519PublicKey, now: datetime,
           applied_serial: int) -> Payload:
    """The announcement in a heartbeat answer's ``endpoints_announcement``, if it is signed
    by ``key``, newer than ``applied_serial`` and not expired; AnnouncementError otherwise."""
    if not isinstance(message, dict):
        raise AnnouncementError("announcement must be an object")
    encoded, signature = message.get("payload"), message.get("signature")
    if not isinstance(encoded, str) or not isinstance(signature, str):
        raise AnnouncementError("announcement is unsigned (payload and signature needed)")
    if len(encoded) > MAX_PAYLOAD * 4 // 3 + 4:
        raise AnnouncementError(f"payload larger than {MAX_PAYLOAD} bytes")
    try:
        payload = base64.b64decode(encoded, validate=True)
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AnnouncementError("payload or signature is not base64") from exc
    try:
        key.verify(raw_signature, payload)
    except InvalidSignature as exc:
        raise AnnouncementError("bad signature") from exc
    found = parse_payload(payload)
    if found.serial <= applied_serial:
        raise AnnouncementError(f"serial {found.serial} is not newer than "
                                f"{applied_serial} (replayed or older)")
    if found.expires <= now:
        raise AnnouncementError(f"expired at {found.expires.strftime(TIME_FORMAT)}")
    return found
