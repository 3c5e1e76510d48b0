"""Remove IP addresses from text so a volunteer's address never leaves the device in clear.

Used on error messages (``unknown_failure: ...``) and, with ``scrub_value``, on a whole
measurement before it is spooled or uploaded, replacing the probe's own address with
``[scrubbed]`` as OONI does.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from typing import Any

SCRUBBED = "[scrubbed]"

_IPV4 = r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.])"
# Generous IPv6 candidate; each candidate is confirmed with the ipaddress module.
_IPV6 = r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![0-9A-Fa-f:])"
_IP_PATTERN = re.compile(f"{_IPV4}|{_IPV6}")


def _replace(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    return SCRUBBED


def scrub_ips(text: str) -> str:
    """Replace every IPv4 and IPv6 address in ``text`` with ``[scrubbed]``."""
    return _IP_PATTERN.sub(_replace, text)


def scrub_value(value: Any, addresses: set[str]) -> Any:
    """Deep-copy ``value`` replacing each occurrence of the given addresses in any string."""
    if not addresses:
        return value
    if isinstance(value, str):
        for address in addresses:
            if address and address in value:
                value = value.replace(address, SCRUBBED)
        return value
    if isinstance(value, list):
        return [scrub_value(v, addresses) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_base64(v, addresses) if k == "body" and _is_base64(v)
                else scrub_value(v, addresses) for k, v in value.items()}
    return value


def _is_base64(value: Any) -> bool:
    return isinstance(value, dict) and value.get("format") == "base64" and \
        isinstance(value.get("data"), str)


def _scrub_base64(value: dict[str, Any], addresses: set[str]) -> dict[str, Any]:
    """A response body in OONI's binary form (not UTF-8): its bytes scrubbed as Latin-1
    text, which maps every byte to one character and back. Certificates (also base64) are
    not touched here: DER cannot be edited (``probe.privacy`` blanks one that names us)."""
    try:
        text = base64.b64decode(value["data"], validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return dict(value)
    scrubbed = scrub_value(text, addresses)
    if scrubbed == text:
        return dict(value)
    return {**value, "data": base64.b64encode(scrubbed.encode("latin-1")).decode("ascii")}


def scrub_address(text: str, address: str) -> str:
    """Replace every spelling of one IP address in ``text`` with ``[scrubbed]``.

    IPv6 addresses are matched in any compression or letter case, and an IPv4 address also
    where it appears inside an IPv4-mapped IPv6 address, because the text was written by
    someone else (the collector scrubs what a probe uploaded with the address it came from).
    """
    try:
        target = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(target, ipaddress.IPv6Address) and target.ipv4_mapped is not None:
        target = target.ipv4_mapped
    if target.version == 4:
        return re.sub(rf"(?<![\d.]){re.escape(str(target))}(?![\d.])", SCRUBBED, text)

    def replace(match: re.Match[str]) -> str:
        found_text = match.group(0)
        try:
            found = ipaddress.ip_address(found_text.split("%", 1)[0])
        except ValueError:
            return found_text
        return SCRUBBED if found == target else found_text

    return _IP_PATTERN.sub(replace, text)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Every spelling of an address that a page, a header, a certificate or a reverse DNS name may
# carry. IPv4 may be written with dots, with dashes or underscores (reverse DNS names such as
# "203-0-113-7.dsl.example.net"), with leading zeros, reversed ("7.113.0.203.in-addr.arpa") or
# inside a longer run of numbers ("ns1.203.0.113.7"); IPv6 in any compression or case, with a
# zone, or with an embedded IPv4 tail ("::ffff:203.0.113.7").
_SPELLINGS = re.compile(
    r"(?P<v6>(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?:%\w+)?(?![0-9A-Fa-f:]))"
    r"|(?P<run>(?<!\d)\d{1,3}(?P<sep>[._-])\d{1,3}(?:(?P=sep)\d{1,3}){2,}(?!\d))"
)


def _ipv4_from_parts(parts: list[str]) -> ipaddress.IPv4Address | None:
    numbers = [int(p) for p in parts]
    if any(n > 255 for n in numbers):
        return None
    return ipaddress.IPv4Address(bytes(numbers))


def _ipv6_spellings(text: str) -> list[IPAddress]:
    """The address itself plus any IPv4 address embedded in it (mapped, 6to4, Teredo)."""
    try:
        address = ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return []
    found: list[IPAddress] = [address]
    for embedded in (address.ipv4_mapped, address.sixtofour):
        if embedded is not None:
            found.append(embedded)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _scrub_run(parts: list[str], sep: str, is_own: Callable[[IPAddress], bool]) -> str:
    """Scrub each window of four numbers that is an own address, forwards or reversed."""
    hit = [False] * len(parts)
    for start in range(len(parts) - 3):
        window = parts[start:start + 4]
        for candidate in (window, window[::-1]):
            address = _ipv4_from_parts(candidate)
            if address is not None and is_own(address):
                hit[start:start + 4] = [True] * 4
    out: list[str] = []
    index = 0
    while index < len(parts):
        if hit[index]:
            while index < len(parts) and hit[index]:
                index += 1
            out.append(SCRUBBED)
        else:
            out.append(parts[index])
            index += 1
    return sep.join(out)


def scrub_matching(text: str, is_own: Callable[[IPAddress], bool]) -> str:
    """Replace, in any spelling, each address for which ``is_own`` is true with ``[scrubbed]``.

    Unlike ``scrub_ips`` this keeps every other address: the addresses of measured sites and
    resolvers are the measurement, only the probe's own addresses must go.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("v6"):
            own = any(is_own(a) for a in _ipv6_spellings(match.group("v6")))
            return SCRUBBED if own else match.group(0)
        sep = match.group("sep")
        return _scrub_run(match.group("run").split(sep), sep, is_own)

    return _SPELLINGS.sub(replace, text)
