"""Remove IP addresses from text so a volunteer's address never leaves the device in clear.

Used on error messages (``unknown_failure: ...``) and, with ``scrub_value``, on a whole
measurement before it is spooled or uploaded, replacing the probe's own address with
``[scrubbed]`` as OONI does.
"""

from __future__ import annotations

import ipaddress
import re
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
        return {k: scrub_value(v, addresses) for k, v in value.items()}
    return value


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
