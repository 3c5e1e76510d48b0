"""Remove IP addresses from text, in any spelling, so a volunteer's address never leaves the
device in clear and is never stored by the collector.

One matcher serves every path: ``scrub_matching(text, is_own)`` finds each spelling of an
address in ``text`` (see ``_SPELLINGS`` below) and replaces those for which ``is_own`` holds.
The probe uses it with its address book (``probe.local.privacy``) before spooling and uploading; the
collector uses it, through ``scrub_address``, on every measurement and heartbeat with the
address the request came from; error messages and logs use it through ``scrub_ips``, which
replaces every address. Text written by someone else (a site, a censor's middlebox, a DNS
server) may spell an address any way it likes, so the matcher is generous in what it
considers and exact in what it replaces: a candidate is replaced only when it parses to an
address the predicate accepts.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from typing import Any

SCRUBBED = "[scrubbed]"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Predicate = Callable[[IPAddress], bool]

# The spellings an address may have in a page, a header, a certificate, an error message or a
# reverse DNS name, one pattern each, applied in this order (each pass sees the text the
# previous ones left; "[scrubbed]" holds nothing any later pass can match):
#
# 1. IPv6 with colons: any compression, letter case, zero-padded groups ("2001:0db8:0000:..."),
#    a zone ("%eth0"), or a dotted IPv4 tail ("::ffff:203.0.113.7", "::ffff:203.000.113.007").
_V6 = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4})(?:%\w+)?(?![0-9A-Fa-f:])")
# 2. The same with its colons percent-encoded, as in a URL's query ("2001%3Adb8%3A%3A7").
_V6_PERCENT = re.compile(
    r"(?:(?<=%3[Aa])|(?<![0-9A-Fa-f]))(?:[0-9A-Fa-f]{0,4}%3[Aa]){2,7}[0-9A-Fa-f]{0,4}"
    r"(?![0-9A-Fa-f])")
# 3. IPv6 inside a DNS label with dashes for colons ("host-2001-db8-42-1--7.isp.example",
#    "--ffff-cb00-7107"): every window of the label's dash-separated parts is tried.
_LABEL = re.compile(r"(?<![0-9A-Za-z-])[0-9A-Za-z]*(?:-[0-9A-Za-z]*){2,}")
# 4. ip6.arpa names: 16 to 32 nibbles, least significant first ("7.0.0.0. ... .8.b.d.0.1.0.0.2").
_NIBBLES = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]\.){15,}[0-9A-Fa-f](?![0-9A-Za-z])")
# 5. IPv4 as a run of numbers joined by dots, dashes or underscores: plain, zero-padded
#    ("203.000.113.007"), in a host name ("203-0-113-7.example.net", "ns1.203.0.113.7"),
#    reversed ("7.113.0.203.in-addr.arpa"). Every window of four numbers is tried, both ways.
#    (No lookbehind in front: a pattern that starts with a character class lets the regex
#    engine skip to the next digit in C; a run glued to a longer number is cut in _run.)
_RUN = re.compile(r"[0-9]{1,3}(?P<sep>[._-])[0-9]{1,3}(?:(?P=sep)[0-9]{1,3}){2,}(?![0-9])")
# Necessary conditions for passes 1, 3, 4 and 5, each starting with a literal or a class so
# that it is a fast scan: most strings of a measurement (keys, words, URLs, times, a page's
# text) hold nothing that could spell an address, and the full patterns are slow to scan.
_SIX_COLONS = re.compile(r":[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){4}:")
_SEVEN_DASHES = re.compile(r"-[0-9A-Fa-f]{1,4}(?:-[0-9A-Fa-f]{1,4}){5}-")
_FOUR_NIBBLES = re.compile(r"\.[0-9A-Fa-f]\.[0-9A-Fa-f]\.[0-9A-Fa-f]\.[0-9A-Fa-f]\.")
_THREE_NUMBERS = re.compile(r"[0-9][._-][0-9]{1,3}[._-][0-9]")
_GROUP = re.compile(r"[0-9A-Fa-f]{0,4}")
_DOTTED_TAIL = re.compile(r"(?P<head>.*:)(?P<tail>[0-9]{1,3}(?:\.[0-9]{1,3}){3})")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _ipv4_from_parts(parts: list[str]) -> ipaddress.IPv4Address | None:
    numbers = [int(p) for p in parts]
    if any(n > 255 for n in numbers):
        return None
    return ipaddress.IPv4Address(bytes(numbers))


def _parse_ipv6(text: str) -> ipaddress.IPv6Address | None:
    """``text`` as an IPv6 address, allowing a zone and a zero-padded dotted IPv4 tail
    (which ``ipaddress`` refuses)."""
    text = text.split("%", 1)[0]
    tail = _DOTTED_TAIL.fullmatch(text)
    if tail is not None:
        v4 = _ipv4_from_parts(tail.group("tail").split("."))
        if v4 is None:
            return None
        text = tail.group("head") + str(v4)
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def _ipv6_spellings(address: ipaddress.IPv6Address) -> list[IPAddress]:
    """The address itself plus any IPv4 address embedded in it: IPv4-mapped, IPv4-compatible,
    NAT64 (64:ff9b::/96), 6to4 and Teredo."""
    found: list[IPAddress] = [address]
    value = int(address)
    if value >> 32 == 0 or address in _NAT64:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    for embedded in (address.ipv4_mapped, address.sixtofour):
        if embedded is not None:
            found.append(embedded)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _could_be_ipv6(text: str) -> bool:
    """A cheap necessary condition, so that most candidates (times such as 12:30:45) never
    reach the parser: eight groups, or seven and an IPv4 tail, or a "::"."""
    colons = text.split("%", 1)[0].count(":")
    return colons == 7 or "::" in text or (colons == 6 and "." in text)


def _own_ipv6(text: str, is_own: Predicate) -> bool:
    if not _could_be_ipv6(text):
        return False
    address = _parse_ipv6(text)
    return address is not None and any(is_own(a) for a in _ipv6_spellings(address))


def _replace_windows(parts: list[str], sep: str, hits: list[bool]) -> str:
    """Join ``parts`` with ``sep``, each maximal stretch of hit parts becoming one marker."""
    out: list[str] = []
    index = 0
    while index < len(parts):
        if hits[index]:
            while index < len(parts) and hits[index]:
                index += 1
            out.append(SCRUBBED)
        else:
            out.append(parts[index])
            index += 1
    return sep.join(out)


def _scrub_run(parts: list[str], sep: str, is_own: Predicate) -> str:
    """Scrub each window of four numbers that is an own address, forwards or reversed."""
    single = is_own if isinstance(is_own, _SameAddress) else None
    if single is not None and single.ipv4 is None:
        return sep.join(parts)  # one IPv6 address: no run of numbers can be it
    numbers = [int(p) for p in parts]
    hits = [False] * len(parts)
    for start in range(len(parts) - 3):
        window = numbers[start:start + 4]
        if max(window) > 255:
            continue
        for a, b, c, d in (window, window[::-1]):
            value = a << 24 | b << 16 | c << 8 | d
            # One known address (the collector's case) is compared as a number, without
            # building an address object for each candidate.
            if (value == single.ipv4 if single is not None
                    else is_own(ipaddress.IPv4Address(value))):
                hits[start:start + 4] = [True] * 4
    return _replace_windows(parts, sep, hits)


def _scrub_label(label: str, is_own: Predicate) -> str:
    """Scrub each window of dash-separated hex groups that spells an own IPv6 address."""
    if "--" not in label and label.count("-") < 7:
        return label  # neither "::" nor eight groups: no IPv6 address (dates, words)
    parts = label.split("-")
    hexes = [_GROUP.fullmatch(p) is not None for p in parts]
    if sum(hexes) < 3:
        return label
    hits = [False] * len(parts)
    for start in range(len(parts)):
        # At most eight groups and the two empty parts a leading or trailing "--" leaves.
        for stop in range(start + 3, min(len(parts), start + 10) + 1):
            if not all(hexes[start:stop]):
                break
            if _own_ipv6(":".join(parts[start:stop]), is_own):
                hits[start:stop] = [True] * (stop - start)
    return _replace_windows(parts, "-", hits) if any(hits) else label


def _scrub_nibbles(text: str, is_own: Predicate) -> str:
    """An ip6.arpa name: the last 32 nibbles are the address, most significant last; 16 to
    31 are a prefix (a /64 reverse zone names the subscriber's prefix)."""
    nibbles = text.split(".")
    used = nibbles[-32:]
    digits = "".join(reversed(used)).ljust(32, "0")
    address = ipaddress.IPv6Address(int(digits, 16))
    if not any(is_own(a) for a in _ipv6_spellings(address)):
        return text
    return ".".join([*nibbles[:-32], SCRUBBED]) if len(nibbles) > 32 else SCRUBBED


def scrub_matching(text: str, is_own: Predicate) -> str:
    """Replace, in any spelling, each address for which ``is_own`` is true with ``[scrubbed]``.

    Every other address stays: the addresses of measured sites and resolvers are the
    measurement, only the probe's own addresses must go.
    """
    # Each pass runs only where a valid address could be: IPv6 needs "::" or six colons
    # in a row of groups, a dashed one "--" or seven dashes, and so on. (``_NEEDED`` holds a
    # necessary condition of each of these prechecks: keep the two in step.)
    if "::" in text or _SIX_COLONS.search(text):
        text = _V6.sub(lambda m: SCRUBBED if _own_ipv6(m.group(0), is_own) else m.group(0),
                       text)
    if "%3" in text:
        text = _V6_PERCENT.sub(
            lambda m: SCRUBBED if _own_ipv6(re.sub("%3[Aa]", ":", m.group(0)), is_own)
            else m.group(0), text)
    if "--" in text or _SEVEN_DASHES.search(text):
        text = _LABEL.sub(lambda m: _scrub_label(m.group(0), is_own), text)
    if _FOUR_NIBBLES.search(text):
        text = _NIBBLES.sub(lambda m: _scrub_nibbles(m.group(0), is_own), text)
    if _THREE_NUMBERS.search(text):
        text = _RUN.sub(lambda m: _run(m, is_own), text)
    return text


def _run(match: re.Match[str], is_own: Predicate) -> str:
    sep = match.group("sep")
    parts = match.group(0).split(sep)
    start = match.start()
    if start and match.string[start - 1] in "0123456789":
        # The match began inside a longer number: its first part is not an octet.
        if len(parts) < 5:
            return match.group(0)
        return parts[0] + sep + _scrub_run(parts[1:], sep, is_own)
    return _scrub_run(parts, sep, is_own)


def _every(address: IPAddress) -> bool:
    return True


def same_address(address: str) -> Predicate | None:
    """A predicate true for ``address`` only (an IPv4-mapped IPv6 address is its IPv4
    address); None when ``address`` is not an IP address."""
    try:
        target = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(target, ipaddress.IPv6Address) and target.ipv4_mapped is not None:
        target = target.ipv4_mapped
    return _SameAddress(target)


class _SameAddress:
    """The predicate of ``same_address``: equality with one address, whose number
    ``_scrub_run`` can compare directly."""

    __slots__ = ("target", "ipv4")

    def __init__(self, target: IPAddress) -> None:
        self.target = target
        self.ipv4 = int(target) if target.version == 4 else None

    def __call__(self, found: IPAddress) -> bool:
        return found == self.target


def scrub_ips(text: str) -> str:
    """Replace every IPv4 and IPv6 address in ``text``, in any spelling, with ``[scrubbed]``
    (error messages and log lines, which need no address to be understood)."""
    return scrub_matching(text, _every)


def scrub_address(text: str, address: str) -> str:
    """Replace every spelling of one IP address in ``text`` with ``[scrubbed]``: the collector
    scrubs what a probe uploaded with the address the upload came from."""
    predicate = same_address(address)
    return text if predicate is None else scrub_matching(text, predicate)


def scrub_document(value: Any, is_own: Predicate) -> tuple[Any, bool]:
    """``value`` (parsed JSON) with every own address removed from every string, keys
    included; returns it and whether anything changed (unchanged parts are shared, and an
    unchanged document is returned itself).

    Scrubbing the parsed document rather than its serialized text keeps JSON escapes out of
    the matcher's view: ``\\u00e9203.0.113.7`` would hide an address behind the escape's
    digits, and a replacement could cut a ``\\u0000`` escape in two.

    A measurement holds a few hundred distinct strings and almost never an own address, so
    the strings are first scrubbed together (``_scrub_texts``: a few scans of their joined
    text, the matcher only on the few strings a scan finds); only when one of them changed
    is the document rebuilt, with those results.
    """
    texts = _texts(value)
    replaced = _scrub_texts(texts, is_own)
    if replaced is None:  # a key that is not a string (not JSON): each string on its own
        texts, replaced = [], {}
    elif not replaced:
        return value, False
    changed = False
    # Keys and values repeat within a measurement (every query's "t0", an address in the
    # DNS answer, the TCP connect and the network events): each distinct string once.
    seen: dict[str, str] = {**{t: t for t in texts}, **replaced}

    def scrub(text: str) -> str:
        nonlocal changed
        out = seen.get(text)
        if out is None:
            out = seen[text] = scrub_matching(text, is_own)
        if out != text:
            changed = True
        return out

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return scrub(item)
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {walk(k): binary(v) if k == "body" and _is_base64(v) else walk(v)
                    for k, v in item.items()}
        return item

    def binary(body: dict[str, Any]) -> dict[str, Any]:
        # A response body in OONI's binary form (not UTF-8): its bytes scrubbed as Latin-1
        # text, which maps every byte to one character and back. Certificates (also base64)
        # are not touched: DER cannot be edited (``probe.local.privacy`` blanks one that names us).
        text = _body_text(body)
        if text is None:
            return {walk(k): walk(v) for k, v in body.items()}
        out = scrub(text)
        if out == text:
            return body
        return {**body, "data": base64.b64encode(out.encode("latin-1")).decode("ascii")}

    result = walk(value)
    return (result, True) if changed else (value, False)


def _body_text(body: dict[str, Any]) -> str | None:
    """A base64 body's bytes as Latin-1 text; None when its data is not base64."""
    try:
        return base64.b64decode(body["data"], validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None


_CONTAINERS = (list, dict)  # a tuple: isinstance with it is faster than with ``list | dict``


def _texts(value: Any) -> list[Any]:
    """Every string of ``value``, keys included, and the Latin-1 text of each base64 body,
    each once: all that ``scrub_document``'s walk hands to the matcher, and a little more
    (the walk skips a base64 body's own strings, such as its data), which costs only a
    scan. Keys that are not strings (not JSON) are listed too, for ``_scrub_texts`` to
    refuse."""
    found: list[Any] = []
    add = found.append
    stack = [value]
    push = stack.append
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.extend(item)
            for child in item.values():
                if isinstance(child, str):
                    add(child)
                elif isinstance(child, _CONTAINERS):
                    push(child)
            if "body" in item and _is_base64(body := item["body"]):
                text = _body_text(body)
                if text is not None:
                    add(text)
        elif isinstance(item, list):
            for child in item:
                if isinstance(child, str):
                    add(child)
                elif isinstance(child, _CONTAINERS):
                    push(child)
        elif isinstance(item, str):
            add(item)
    return list(dict.fromkeys(found))


# What each pass of ``scrub_matching`` needs to change anything, as patterns (keep them in
# step with it): the precheck of passes 1 to 4, and for the last pass a run of four numbers
# (``_RUN``), which its precheck ``_THREE_NUMBERS`` does not ask for (versions, dates). A text
# none of these matches goes through every pass unchanged. Each starts with one literal
# character, which the regex engine scans for in C several times faster than for a class
# such as [0-9], and those that start with the same character share a scan. None matches a
# NUL or looks at the text around its match.
_NEEDED = (
    re.compile(r":(?::|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){4}:)"),  # "::", _SIX_COLONS
    re.compile(r"%3"),
    # "--", _SEVEN_DASHES; and for each separator, a _RUN from its first separator on
    re.compile(r"-(?:-|[0-9A-Fa-f]{1,4}(?:-[0-9A-Fa-f]{1,4}){5}-|[0-9]{1,3}-[0-9]{1,3}-[0-9])"),
    re.compile(r"\.(?:[0-9A-Fa-f]\.[0-9A-Fa-f]\.[0-9A-Fa-f]\.[0-9A-Fa-f]\.|[0-9]{1,3}\.[0-9]{1,3}\.[0-9])"),
    re.compile(r"_[0-9]{1,3}_[0-9]{1,3}_[0-9]"),
)


# The longest text scanned in the joined text of a document's strings.
_JOINED = 8192


def _scrub_texts(texts: list[Any], is_own: Predicate) -> dict[str, str] | None:
    """``scrub_matching`` of each of ``texts``, as {text: scrubbed} for those it changes;
    None when a text is not a string.

    The matcher costs a few microseconds a string, mostly in Python, and nearly every
    string of a measurement fails all its prechecks. So the texts are joined with a NUL
    between them, each pattern of ``_NEEDED`` scans the joined text once, in C, and the
    matcher runs only on the texts where one matched. This is exact:

    * a text that no pattern of ``_NEEDED`` matches is returned by ``scrub_matching``
      unchanged: by induction over the passes, each sees the text itself (the earlier ones
      left it as it was) and leaves it so, as its precheck fails or (the last pass) its
      pattern finds nothing to replace;
    * a pattern matches a text alone exactly when it matches the joined text inside that
      text: it matches no NUL, so no match reaches over one into a neighbour, and it looks
      at nothing outside its match, so the neighbours make no difference. The text a match
      lies in runs from the NUL before it to the NUL after it, as no text holds a NUL
      (counted: when one does, the texts are scanned one by one), and each search resumes
      after that text, so every text with a match is found.

    Texts longer than ``_JOINED`` (pages) are not joined: the matcher gets them whole.
    """
    try:
        joined = "\0".join(texts)
    except TypeError:
        return None
    found: list[str] = []
    if len(joined) > _JOINED and max(map(len, texts)) > _JOINED:
        # A long text (a page) goes to the matcher straight away, without the scans: it
        # would be scanned twice when a scan finds it, as the matcher's prechecks scan too.
        found = [t for t in texts if len(t) > _JOINED]
        texts = [t for t in texts if len(t) <= _JOINED]
        joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:  # a text holds a NUL: one by one
        found += [t for t in texts if any(needed.search(t) for needed in _NEEDED)]
    else:
        spans: dict[int, int] = {}  # where each text found starts and ends
        for needed in _NEEDED:
            search = needed.search
            position = 0
            while (match := search(joined, position)) is not None:
                start = joined.rfind("\0", 0, match.start()) + 1
                end = joined.find("\0", match.end())
                if end < 0:
                    end = len(joined)
                spans[start] = end
                position = end + 1
        found += [joined[start:end] for start, end in spans.items()]
    replaced: dict[str, str] = {}
    for text in found:
        out = scrub_matching(text, is_own)
        if out != text:
            replaced[text] = out
    return replaced


def _is_base64(value: Any) -> bool:
    return isinstance(value, dict) and value.get("format") == "base64" and \
        isinstance(value.get("data"), str)


def scrub_value(value: Any, addresses: set[str]) -> Any:
    """``value`` (parsed JSON) with every spelling of the given addresses replaced."""
    predicates = [p for p in map(same_address, addresses) if p is not None]
    if not predicates:
        return value

    def is_own(address: IPAddress) -> bool:
        return any(p(address) for p in predicates)

    return scrub_document(value, is_own)[0]
