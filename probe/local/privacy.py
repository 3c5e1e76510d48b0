"""The probe's own addresses: learned, remembered only as keyed digests, scrubbed everywhere.

A volunteer's public address is the one fact that ties measurements to a person. The probe
learns its addresses from two sources: the machine's own interfaces (on a VPS or an IPv6
network the public address is right there) and the address the collector saw the heartbeat
come from (``observed_address`` in the heartbeat answer: the address behind home NAT). Every
measurement is scrubbed before it is written to the spool and again before each upload, in
any spelling (``probe.core.scrub``, the matcher the collector uses too).

Nothing here stores an address in clear: the book keeps HMAC-SHA256 digests under a random
per-install key, so the spool file says "this probe had some address" without saying which.
(An IPv4 digest can be brute-forced by whoever holds the key and the file; it keeps the address
out of casual sight and out of every copy of the data, not away from a seized device.)
For IPv6 the /64 prefix is remembered too: privacy-extension addresses change every few hours
but share it, and the prefix alone identifies the subscriber.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509

from probe.core.scrub import SCRUBBED, IPAddress, scrub_document, scrub_matching

# Addresses that identify nobody: loopback, link-local, private ranges, unspecified. Anything
# else seen on an interface (including carrier-grade NAT space, which the ISP can map to a
# subscriber) is treated as identifying.
_NOT_IDENTIFYING = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "255.255.255.255/32", "::/128", "::1/128", "fc00::/7", "fe80::/10",
))


def identifying(address: IPAddress) -> bool:
    return not any(address in network for network in _NOT_IDENTIFYING
                   if network.version == address.version)


class AddressBook:
    """Keyed digests of the probe's addresses; answers "is this one of ours?"."""

    def __init__(self, key: bytes, digests: Iterable[str] = ()) -> None:
        self._key = key
        self._digests = set(digests)

    @property
    def size(self) -> int:
        return len(self._digests)

    def _digest(self, label: bytes, packed: bytes) -> str:
        return hmac.new(self._key, label + packed, hashlib.sha256).hexdigest()

    def _digests_of(self, address: IPAddress) -> list[str]:
        if isinstance(address, ipaddress.IPv6Address):
            return [self._digest(b"v6:", address.packed),
                    self._digest(b"v6/64:", address.packed[:8])]
        return [self._digest(b"v4:", address.packed)]

    def learn(self, text: str, *, only_identifying: bool = False) -> list[str]:
        """Remember ``text`` as one of ours; returns the digests that are new (to persist).

        Loopback and unspecified addresses are never learned: they are the placeholders the
        measurement format itself uses (``probe_ip`` is always 127.0.0.1).
        """
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
        except ValueError:
            return []
        if address.is_loopback or address.is_unspecified:
            return []
        if only_identifying and not identifying(address):
            return []
        new = [d for d in self._digests_of(address) if d not in self._digests]
        self._digests.update(new)
        return new

    def is_own(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address):
            return (self._digest(b"v6:", address.packed) in self._digests
                    or self._digest(b"v6/64:", address.packed[:8]) in self._digests)
        return self._digest(b"v4:", address.packed) in self._digests

    def scrub(self, text: str) -> str:
        """``text`` with every spelling of our addresses replaced by ``[scrubbed]``."""
        if not self._digests:
            return text
        return scrub_matching(text, self.is_own)

    def names_us(self, der: bytes) -> bool:
        """Whether a DER certificate carries one of our addresses: as text (subject, DNS
        names) or as a binary ``iPAddress`` in its subjectAltName."""
        if not self._digests:
            return False
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            # Not parsable: look at its bytes as text, the best that can be done.
            text = der.decode("latin-1")
            return self.scrub(text) != text
        texts = [str(a.value) for name in (certificate.subject, certificate.issuer)
                 for a in name]
        try:
            san = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
        if san is not None:
            for kind in (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier):
                texts.extend(str(v) for v in san.get_values_for_type(kind))
            if any(self.is_own(n) for n in san.get_values_for_type(x509.IPAddress)
                   if isinstance(n, ipaddress.IPv4Address | ipaddress.IPv6Address)):
                return True
        return any(self.scrub(t) != t for t in texts)

    def scrub_measurement(self, text: str) -> str:
        """A serialized measurement with our addresses removed, from every string of the
        document and also from inside base64 certificates, where plain text replacement
        cannot see. Unchanged text is returned as it was.

        A response body that is not UTF-8 is stored in base64 (OONI's form for binary data):
        its bytes are scrubbed as Latin-1 text, which maps every byte to one character and
        back, and encoded again.

        DER cannot be edited without breaking it, so a certificate that names us is replaced
        whole by ``[scrubbed]``, and so is its SHA-256 in ``x_certificates``: internet-wide
        scans index certificates by fingerprint together with the address they were seen
        on. Its described form (subject, issuer, names) stays, text-scrubbed.
        """
        if not self._digests:
            return text
        try:
            measurement = json.loads(text)
        except ValueError:
            return self.scrub(text)  # not a document (never written by the probe)
        changed = '"peer_certificates"' in text and _scrub_certificates(measurement, self)
        measurement, scrubbed = scrub_document(measurement, self.is_own)
        if not (changed or scrubbed):
            return text
        return json.dumps(measurement, ensure_ascii=False, separators=(",", ":"))


def _scrub_certificates(value: Any, book: AddressBook) -> bool:
    """Blank, in place, every certificate in a ``peer_certificates`` list that names us;
    returns whether anything changed."""
    changed = False
    if isinstance(value, dict):
        chain = value.get("peer_certificates")
        if isinstance(chain, list):
            described = value.get("x_certificates")
            for index, item in enumerate(chain):
                if not isinstance(item, dict) or not isinstance(item.get("data"), str):
                    continue
                try:
                    der = base64.b64decode(item["data"], validate=True)
                except (binascii.Error, ValueError):
                    continue
                if book.names_us(der):
                    item["data"] = SCRUBBED
                    changed = True
                    if isinstance(described, list) and index < len(described) and \
                            isinstance(described[index], dict):
                        described[index]["sha256"] = SCRUBBED
        for item in value.values():
            changed = _scrub_certificates(item, book) or changed
    elif isinstance(value, list):
        for item in value:
            changed = _scrub_certificates(item, book) or changed
    return changed


def interface_addresses(fib_trie: str = "/proc/net/fib_trie",
                        if_inet6: str = "/proc/net/if_inet6") -> list[str]:
    """The host's own IPv4 (``/32 host LOCAL`` entries) and IPv6 addresses, from Linux's
    tables; an unreadable file yields nothing rather than an error."""
    found: list[str] = []
    try:
        lines = Path(fib_trie).read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in zip(lines, lines[1:], strict=False):
        if line.strip() == "/32 host LOCAL" and "|--" in previous:
            address = previous.split("|--", 1)[1].strip()
            if address not in found:
                found.append(address)
    try:
        rows = Path(if_inet6).read_text().splitlines()
    except OSError:
        rows = []
    for row in rows:
        fields = row.split()
        if fields and len(fields[0]) == 32:
            try:
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
            except ValueError:
                continue
    return found
