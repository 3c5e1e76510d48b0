"""One event in plain sentences a journalist can cite: what, where, since when, how sure, how.

Pure: an event (the API's JSON, ``EventView``), a language, the names of networks and the
categories of targets in; sentences out. The status page, the event page, the Atom feed and
every notification channel use these same sentences, so a reader meets the same words
everywhere. No internal key (``AS0``, ``tls_timeout``, ``members``) reaches a reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from collector.events.i18n import Language, plural, text
from collector.events.names import NetworkNames
from collector.notify.event import EventView

# Each country's civil time (Kazakhstan has one zone, UTC+5, since 2024-03-01).
ZONES = {"KG": ZoneInfo("Asia/Bishkek"), "KZ": ZoneInfo("Asia/Almaty")}
MECHANISMS = ("nxdomain", "bogon", "injected", "spoofed", "servfail", "no_answer", "reset",
              "refused", "timeout", "eof", "mitm", "blockpage", "diff", "sni_throttle",
              "ip_throttle")
LAYERS = {"dns": "DNS", "tcp": "TCP", "tls": "TLS", "http": "HTTP"}
MAX_TARGETS = 8
PLATFORMS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "signal": "Signal",
             "facebook_messenger": "Facebook Messenger", "facebook": "Facebook",
             "instagram": "Instagram", "youtube": "YouTube", "tiktok": "TikTok", "x": "X",
             "tor": "Tor", "psiphon": "Psiphon"}


@dataclass(frozen=True, slots=True)
class EventText:
    """The sentences of one event in one language; each ends with a full stop."""

    title: str      # "Blocking in Kazakhstan"
    kind: str       # "Blocking"
    tier: str       # "confirmed"
    what: str
    where: str
    since: str
    sure: str
    how: str | None
    sites: tuple[str, ...]  # "vlast.kz (news media)", in the event's order
    is_open: bool = True

    def lines(self, language: Language) -> list[tuple[str, str]]:
        """(label, sentence) pairs in reading order."""
        since_label = "label.since" if self.is_open else "label.when"
        out = [(text(language, "label.what"), self.what),
               (text(language, "label.where"), self.where),
               (text(language, since_label), self.since),
               (text(language, "label.sure"), self.sure)]
        if self.how:
            out.append((text(language, "label.how"), self.how))
        return out


def local_zone(cc: str) -> ZoneInfo | None:
    return ZONES.get(cc)


def start_words(language: Language, moment: datetime, cc: str) -> str:
    """The event start alone: local time and UTC, or UTC where the zone is not known."""
    local, utc = clock(moment, cc)
    if local_zone(cc) is None:
        return text(language, "start_utc", utc=utc)
    return text(language, "start", local=local, utc=utc)


def clock(moment: datetime, cc: str) -> tuple[str, str]:
    """(local, UTC) as ``YYYY-MM-DD HH:MM``; local is UTC where the zone is not known."""
    utc = moment.strftime("%Y-%m-%d %H:%M")
    zone = local_zone(cc)
    return (utc if zone is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")), utc


def duration(language: Language, start: datetime, end: datetime) -> str:
    minutes = max(0, int((end - start).total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return text(language, "duration.days", d=days, h=hours)
    if hours:
        return text(language, "duration.hours", h=hours, m=mins)
    return text(language, "duration.minutes", m=mins)


def country_name(language: Language, cc: str) -> str:
    try:
        return text(language, f"country.{cc}")
    except KeyError:
        return cc


def site(target: str, language: Language, categories: Mapping[str, str]) -> str:
    """"vlast.kz (news media)" for a URL, "Telegram" for a platform; the category only when
    its words are known."""
    if "://" in target:
        try:
            host = urlsplit(target).hostname or target
        except ValueError:
            host = target
        path = urlsplit(target).path if host != target else ""
        name = host + (path if path not in ("", "/") else "")
    else:
        name = PLATFORMS.get(target.lower(), target)
    code = categories.get(target)
    if code:
        try:
            return f"{name} ({text(language, f'cat.{code}')})"
        except KeyError:
            pass
    return name


def network_list(language: Language, asns: tuple[str, ...], names: NetworkNames) -> str:
    unknown = text(language, "network.unknown")
    return ", ".join(names.label(a, unknown) for a in asns)


def mechanism_words(language: Language, mechanism: str | None,
                    layer: str | None) -> str | None:
    """"Connections hang until they time out (at the TLS step)." or None."""
    if not mechanism:
        return None
    mech = mechanism
    if mech not in MECHANISMS:
        prefix, _, rest = mech.partition("_")
        if prefix in LAYERS and rest in MECHANISMS:
            layer, mech = layer or prefix, rest
    if mech in MECHANISMS:
        words = text(language, f"mech.{mech}")
    else:
        words = text(language, "mech.other", value=mechanism.replace("_", " "))
    where = text(language, "layer", layer=LAYERS[layer]) if layer in LAYERS else ""
    return text(language, "how", mechanism=words, layer=where)


def _why(language: Language, event: EventView) -> str:
    fingerprints = [str(f) for f in event.evidence.get("fingerprints") or []
                    if isinstance(f, str)]
    if any(f.startswith("blockpage:") for f in fingerprints):
        return text(language, "why.blockpage")
    if any(f.startswith("issuer:") for f in fingerprints):
        return text(language, "why.mitm")
    if fingerprints:
        return text(language, "why.fingerprint")
    if len(event.asns) >= 2:
        return text(language, "why.networks")
    return ""


def describe(event: EventView, language: Language, names: NetworkNames,
             categories: Mapping[str, str], now: datetime) -> EventText:
    """The sentences of ``event`` at ``now``."""
    kind = text(language, f"kind.{event.kind}")
    tier = text(language, f"tier.{event.tier}")
    country = country_name(language, event.cc)
    sites = tuple(site(t, language, categories) for t in event.targets)
    shown = ", ".join(sites[:MAX_TARGETS])
    if len(sites) > MAX_TARGETS:
        shown += " " + text(language, "what.more", n=len(sites) - MAX_TARGETS)
    if event.kind == "shutdown":
        mobile = event.evidence.get("scope") == "mobile"
        what = text(language, "what.shutdown_mobile" if mobile else "what.shutdown")
    elif event.kind in ("block", "throttling"):
        what = (text(language, f"what.{event.kind}", targets=shown) if sites
                else text(language, f"what.{event.kind}_all"))
    else:
        what = text(language, f"outage.{event.mechanism}") if event.mechanism in (
            "collector_down", "control_unreachable") else text(language, "outage.other")
    where = (text(language, "where.networks", country=country,
                  networks=network_list(language, event.asns, names))
             if event.asns else text(language, "where.all", country=country))
    local, utc = clock(event.start, event.cc)
    # Without a known zone (several countries, say) there is no local time to show.
    utc_only = "_utc" if local_zone(event.cc) is None else ""
    if event.status == "open":
        since = text(language, f"since.open{utc_only}", local=local, utc=utc,
                     duration=duration(language, event.start, now))
    else:
        end = event.end or event.updated_at
        local_end, utc_end = clock(end, event.cc)
        since = text(language, f"since.closed{utc_only}", local=local, utc=utc,
                     local_end=local_end, utc_end=utc_end,
                     duration=duration(language, event.start, end))
    probes = plural(language, "probes", max(event.probes, 1))
    networks = plural(language, "networks", max(len(event.asns), 1))
    sure = text(language, f"sure.{event.tier}", probes=probes, networks=networks,
                why=_why(language, event) if event.tier == "confirmed" else "")
    layer = event.evidence.get("layer")
    how = mechanism_words(language, event.mechanism, layer if isinstance(layer, str) else None)
    if event.kind == "shutdown" and how is None:
        how = text(language, "shutdown.silent")
    return EventText(title=text(language, "title", kind=kind, country=country), kind=kind,
                     tier=tier, what=what, where=where, since=since, sure=sure, how=how,
                     sites=sites, is_open=event.status == "open")
