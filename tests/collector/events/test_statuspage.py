"""The public status page: built from events and latest results (tables), served by the real
collector with its security headers, and read by a real headless Chromium at phone width
under its Content-Security-Policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import os
import re
import shutil
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from aiohttp import web

from collector.api.security import HEADERS
from collector.events import charts, feed, i18n
from collector.events.i18n import Language
from collector.events.names import NetworkNames
from collector.events.statuspage import (
    STYLE_HASH,
    PageSettings,
    Sample,
    event_page,
    network_rows,
    status_page,
)
from collector.keys import store_key
from collector.notify.event import EventView
from collector.outside.hourly import STATE_NAME as OUTSIDE_STATE
from collector.outside.hourly import HourlyShare
from tests.helpers.fleet import RunningCollector, fleet_events, running_collector
from tests.helpers.paths import REPO
from tests.helpers.servers import serve_app

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def events(now: datetime = NOW) -> list[EventView]:
    return [EventView.from_json(e) for e in fleet_events(now)]


LATEST = [
    {"probe_cc": "KZ", "probe_asn": "AS9198", "test_name": "web_connectivity",
     "input": "https://vlast.kz/", "verdict": "blocked", "layer": "tls",
     "mechanism": "timeout", "start_time": "2024-03-10 11:58:00"},
    {"probe_cc": "KZ", "probe_asn": "AS9198", "test_name": "web_connectivity",
     "input": "https://i.pinimg.com/favicon.ico", "verdict": "ok", "layer": None,
     "mechanism": None, "start_time": "2024-03-10 11:59:00"},
    {"probe_cc": "KZ", "probe_asn": "AS48716", "test_name": "web_connectivity",
     "input": "https://vlast.kz/", "verdict": "ok", "layer": None, "mechanism": None,
     "start_time": "2024-03-10 11:57:00"},
]


def text_of(page: str) -> str:
    page = re.sub(r"<(style|title)>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


class Tags(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


NAMES = NetworkNames.load()


def settings(language: Language = "en", **changes: Any) -> PageSettings:
    return PageSettings(language=language, names=NAMES, **changes)


def test_each_event_reads_as_plain_sentences() -> None:
    page = status_page(events(), LATEST, NOW, settings(
        categories={"https://vlast.kz/": "NEWS"}))
    text = text_of(page)
    assert "Now: 3 open events" in text
    order = [text.index(s) for s in ("Internet shutdown in Kyrgyzstan",
                                     "Blocking in Kazakhstan", "Throttling in Kazakhstan")]
    assert order == sorted(order)
    assert "What These sites and services cannot be reached: vlast.kz (news media)." in text
    assert "Where Kazakhstan, on Kazakhtelecom (AS9198)." in text
    assert "Where Kyrgyzstan, on ElCat (AS8449)." in text
    # Local time (UTC+5 in Kazakhstan, UTC+6 in Kyrgyzstan) with UTC beside it.
    assert ("Since 2024-03-08 17:00 local time (2024-03-08 12:00 UTC), for 2 d 0 h so far."
            in text)
    assert "Since 2024-03-10 15:55 local time (2024-03-10 09:55 UTC), for 2 h 5 min" in text
    assert "How sure Confirmed: seen by 6 probes on 1 network." in text
    assert "How sure Suspected: seen by 1 probe on 1 network, not yet by others." in text
    assert "How Connections hang until they time out (at the TLS step)." in text
    assert "How Traffic to the site's name is slowed down." in text
    assert 'href="/events/ev-kz-block"' in page
    # No internal key reaches the reader.
    for raw in ("tls_timeout", "sni_throttle", "members", "fingerprints", "event_window",
                "blocked_share_lower_bound", "AS0", "{", "null"):
        assert raw not in text, raw


def test_no_local_time_where_the_zone_is_not_known() -> None:
    elsewhere = EventView.from_json({**fleet_events(NOW)[1], "cc": "TJ"})
    text = text_of(status_page([elsewhere], [], NOW, settings()))
    assert "Since 2024-03-08 12:00 UTC, for 2 d 0 h so far." in text
    assert "local time (2024-03-08" not in text


def test_tiers_say_why_an_event_is_confirmed() -> None:
    base = fleet_events(NOW)[1]
    seen = {
        "blockpage:kz-ministry": "and a known block page was seen",
        "issuer:Qaznet Trust Network": "a certificate not issued to the site (interception)",
    }
    for fingerprint, words in seen.items():
        event = EventView.from_json({**base, "evidence": {"fingerprints": [fingerprint]}})
        assert words in text_of(status_page([event], [], NOW, settings()))
    two = EventView.from_json({**base, "asns": ["AS9198", "AS48716"], "evidence": {}})
    assert ("Confirmed: seen by 6 probes on 2 networks, on several networks at once."
            in text_of(status_page([two], [], NOW, settings())))


def test_page_needs_nothing_from_outside() -> None:
    page = status_page(events(), LATEST, NOW)
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(https?:)?//', page)   # no external assets or links
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<meta http-equiv="refresh" content="300">' in page
    assert 'type="application/atom+xml"' in page


def test_every_country_of_the_deployment_is_listed() -> None:
    kz_only = [r for r in LATEST if r["probe_cc"] == "KZ"]
    text = text_of(status_page([], kz_only, NOW, settings()))
    assert "Kyrgyzstan No probes here 0 0 0 0" in text
    assert "No probes in Kyrgyzstan yet: we cannot see what happens there." in text
    assert "Kazakhstan No open event 2 2 1 0" in text
    wider = text_of(status_page([], kz_only, NOW, settings(countries=("KG", "KZ", "TJ"))))
    assert "TJ No probes here" in wider


def test_country_and_network_tables() -> None:
    rows = network_rows(LATEST, [e for e in events() if e.status == "open"])
    by_key = {(r.cc, r.asn): r for r in rows}
    # KG AS8449 has no measurement yet but an open shutdown: it is listed.
    assert set(by_key) == {("KG", "AS8449"), ("KZ", "AS9198"), ("KZ", "AS48716")}
    assert by_key[("KZ", "AS9198")].counts["blocked"] == 1
    assert by_key[("KZ", "AS9198")].worst is not None
    assert by_key[("KZ", "AS9198")].worst.kind == "block"   # block outranks throttling
    assert by_key[("KZ", "AS48716")].worst is None
    text = text_of(status_page(events(), LATEST, NOW, settings()))
    assert "Kyrgyzstan Internet shutdown (likely) 1 0 0 0 0" in text
    assert "Kazakhstan Blocking (confirmed) 2 2 1 0 0" in text
    assert "Kazakhstan PS Internet Company (AS48716) No open event 1 0 0" in text
    # A probe that declared no network is not "AS0".
    nameless = [{**LATEST[0], "probe_asn": "AS0"}]
    assert "a network not known" in text_of(status_page([], nameless, NOW, settings()))


def test_sites_down_or_unclear_are_counted_not_hidden() -> None:
    """A network whose sites are all down (or inconclusive) must not read as "reachable 0,
    blocked 0": the tables count them in a column of their own."""
    down = [{**LATEST[2], "input": f"https://site{i}.kz/", "verdict": "down",
             "layer": "dns", "mechanism": "nxdomain"} for i in range(3)]
    unclear = [{**LATEST[2], "input": "https://other.kz/", "verdict": "inconclusive"}]
    text = text_of(status_page([], down + unclear, NOW, settings()))
    assert "Down or unclear" in text
    assert "Kazakhstan No open event 1 0 0 0 4" in text
    assert "Kazakhstan PS Internet Company (AS48716) No open event 0 0 0 4" in text


def test_hourly_timeline_marks_each_hour_with_the_worst_event() -> None:
    closed = EventView.from_json({
        "id": "old", "kind": "shutdown", "tier": "confirmed", "status": "closed",
        "start": "2024-03-05T20:00:00Z", "end": "2024-03-06T02:00:00Z",
        "updated_at": "2024-03-06T02:00:00Z", "cc": "KZ", "asns": [], "targets": []})
    everything = [*events(), closed]
    cells = charts.hourly(everything, NOW, "KZ", "AS9198")
    first = charts.first_hour(NOW)
    assert len(cells) == 168 and first == datetime(2024, 3, 3, 13, tzinfo=UTC)

    def at(moment: datetime) -> str | None:
        cell = cells[int((moment - first).total_seconds() // 3600)]
        return None if cell is None else cell.kind

    assert at(datetime(2024, 3, 5, 19, tzinfo=UTC)) is None
    assert at(datetime(2024, 3, 5, 20, tzinfo=UTC)) == "shutdown"  # national: every network
    assert at(datetime(2024, 3, 6, 2, tzinfo=UTC)) == "shutdown"
    assert at(datetime(2024, 3, 6, 3, tzinfo=UTC)) is None
    assert at(datetime(2024, 3, 8, 12, tzinfo=UTC)) == "block"
    assert at(datetime(2024, 3, 10, 11, tzinfo=UTC)) == "block"  # block over throttling
    assert charts.hourly(everything, NOW, "KZ", "AS48716")[-1] is None
    page = status_page(everything, LATEST, NOW, settings())
    svg = re.search(r"<svg class=\"timeline\".*?</svg>", page, re.S)
    assert svg is not None
    assert "<title>05.03 20:00–06.03 03:00 UTC: Internet shutdown (confirmed)</title>" \
        in svg.group(0)
    assert svg.group(0).count("Kazakhtelecom (AS9198)") == 1
    assert 'fill="#e07000"' in svg.group(0) and 'fill="#b00020"' in svg.group(0)


def test_quiet_page() -> None:
    text = text_of(status_page([], [], NOW))
    assert "No open events. Probes keep measuring." in text
    assert "No events in the last 7 days." in text


HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_everything_shown_is_escaped(tmp_path: Path) -> None:
    names_file = tmp_path / "names.csv"
    names_file.write_text(f"cc,asn,name,source\nKZ,AS9198,\"{HOSTILE}\",test\n")
    names = NetworkNames.load([names_file])
    event = EventView.from_json({
        **fleet_events(NOW)[1], "id": 'ev"><script>x</script>',
        "targets": [f"https://{HOSTILE}.kz/", HOSTILE], "mechanism": HOSTILE,
        "evidence": {"layer": HOSTILE, "fingerprints": [HOSTILE]}})
    latest = [{**LATEST[0], "input": f"https://x.kz/{HOSTILE}", "probe_cc": "K<",
               "probe_asn": "AS9198", "verdict": HOSTILE, "start_time": HOSTILE}]
    samples = [Sample(uid=HOSTILE, time=HOSTILE, network=HOSTILE, site=HOSTILE,
                      verdict=HOSTILE, control="none")]
    pages = [status_page([event], latest, NOW, PageSettings(names=names,
                                                           categories={HOSTILE: HOSTILE})),
             event_page(event, NOW, PageSettings(names=names, path=f"/{HOSTILE}"), samples)]
    for page in pages:
        tags = Tags(page).tags
        assert {t for t, _ in tags} <= {"html", "head", "meta", "title", "link", "style", "body",
                                        "header", "h1", "h2", "h3", "p", "nav", "a", "strong",
                                        "main", "article", "span", "dl", "dt", "dd", "table",
                                        "thead", "tbody", "tr", "th", "td", "svg", "line",
                                        "text", "rect", "details", "summary", "ul", "li",
                                        "footer"}
        assert not [a for _, attrs in tags for a, _ in attrs if a.startswith("on")]
        assert not [v for _, attrs in tags for a, v in attrs
                    if a == "href" and (v or "").lower().startswith("javascript")]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_feed_escapes_what_it_carries(tmp_path: Path) -> None:
    names_file = tmp_path / "names.csv"
    names_file.write_text("cc,asn,name,source\nKZ,AS9198,<script>alert(1)</script> & co,t\n")
    event = EventView.from_json({**fleet_events(NOW)[1], "id": "ev&<1>",
                                 "targets": [f"https://x.kz/{HOSTILE}"]})
    atom = feed.atom([event], NOW, base="https://s", self_url="https://s/events.atom",
                     language="en", names=NetworkNames.load([names_file]), categories={})
    root = ElementTree.fromstring(atom)  # well-formed whatever the strings
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = root.find("a:entry", ns)
    assert entry is not None
    summary = entry.findtext("a:summary", namespaces=ns) or ""
    assert "<script>alert(1)</script> & co (AS9198)" in summary  # as text, not markup
    assert f"x.kz/{HOSTILE}" in summary
    assert entry.findtext("a:id", namespaces=ns) == "https://s/events/ev%26%3C1%3E"
    assert "<script>" not in atom


def test_russian_page_in_full() -> None:
    page = status_page(events(), LATEST, NOW, settings("ru"))
    text = text_of(page)
    assert '<html lang="ru">' in page
    assert "Сейчас: 3 открытых события" in text
    assert "Блокировка: Казахстан" in text and "Отключение интернета: Кыргызстан" in text
    assert "Где Казахстан, сети: Kazakhtelecom (AS9198)." in text
    assert "Насколько точно Подтверждено: видят 6 зондов, 1 сеть." in text
    assert "Как Соединения зависают до истечения времени ожидания (на этапе TLS)." in text
    english = set(re.findall(r"[A-Za-z]{4,}", text))
    # Only names stay in Latin letters: Kuzot, providers, formats, sites, the language list.
    assert english <= {"Kuzot", "Kazakhtelecom", "ElCat", "Company", "Internet", "Atom",
                       "English", "vlast", "azattyq", "OpenAPI", "JSON", "metrics", "aggregation",
                       "events", "measurements", "openapi", "json", "kloop", "pinimg",
                       "favicon"}, english


def test_english_and_russian_catalogs_are_complete() -> None:
    assert set(i18n.EN) == {k for k in i18n.RU if not k.endswith(".few")}
    for key, value in i18n.EN.items():
        fields = set(re.findall(r"{(\w+)}", value))
        assert fields == set(re.findall(r"{(\w+)}", i18n.RU[key])), key
    # Kyrgyz and Kazakh have the page's fixed text.
    fixed = {"site.title", "h.now", "h.countries", "h.networks", "h.timeline", "th.country",
             "th.status", "status.noprobes", "tier.likely", "kind.block", "country.KG",
             "footer.language", "subscribe.all"}
    for language in ("ky", "kk"):
        assert fixed <= i18n.translated(language), language
        assert set(i18n.CATALOG[language]) <= set(i18n.EN)


def test_kyrgyz_and_kazakh_pages() -> None:
    ky = text_of(status_page(events(), LATEST, NOW, settings("ky")))
    kk = text_of(status_page(events(), LATEST, NOW, settings("kk")))
    assert "Өлкөлөр боюнча" in ky and "Казакстан: Бөгөттөө" in ky
    assert "Елдер бойынша" in kk and "Қазақстан: Бұғаттау" in kk
    # Sentences without a Kyrgyz or Kazakh text fall back to Russian, not to keys.
    assert "Соединения зависают" in ky and "how." not in ky


@pytest.mark.parametrize(("header", "expected"), [
    ("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("en-US,en;q=0.9,ru;q=0.5", "en"), ("kk", "kk"),
    ("de-DE,ky;q=0.4,ru;q=0.3", "ky"), ("de", "en"), ("", "en"), (None, "en"),
    ("ru;q=0", "en"), ("ru;q=x", "en"), (",,;;", "en"), ("*", "en"),
])
def test_language_from_accept_language(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_plural_forms() -> None:
    assert [i18n.plural("ru", "probes", n) for n in (1, 2, 5, 11, 21, 22, 112)] == [
        "1 зонд", "2 зонда", "5 зондов", "11 зондов", "21 зонд", "22 зонда", "112 зондов"]
    assert [i18n.plural("en", "probes", n) for n in (1, 2)] == ["1 probe", "2 probes"]
    assert i18n.plural("ky", "now.count", 3) == "Ачык окуялар: 3"


def test_event_page_links_the_measurements_behind_it() -> None:
    block = events()[1]
    samples = [Sample(uid="20240310T115800Z_abc", time="2024-03-10 11:58:00",
                      network="Kazakhtelecom (AS9198)", site="vlast.kz", verdict="blocked",
                      control="ok")]
    page = event_page(block, NOW, settings(path="/events/ev-kz-block"), samples)
    text = text_of(page)
    assert "<h1>Blocking in Kazakhstan</h1>" in page
    assert "2024-03-10 11:58:00 Kazakhtelecom (AS9198) vlast.kz blocked loaded" in text
    assert 'href="/api/v1/measurement/20240310T115800Z_abc"' in page
    assert 'href="/events/ev-kz-block?lang=ru"' in page
    quiet = text_of(event_page(events()[0], NOW, settings()))
    assert "During a shutdown the probes cannot send anything" in quiet


def assert_security_headers(headers: Mapping[str, str]) -> None:
    policy = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["style-src"] == [f"'{STYLE_HASH}'"]
    assert "script-src" not in directives and "unsafe-inline" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_page_needs_no_inline_script_and_only_its_hashed_style() -> None:
    page = status_page(events(), LATEST, NOW)
    assert "<script" not in page.lower()
    assert not re.search(r"<[^>]+\sstyle=", page), "style attributes are not covered by a hash"
    assert not re.search(r"<[^>]+\son[a-z]+=", page), "no inline event handlers"
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert STYLE_HASH == f"sha256-{digest}"


def test_the_monitors_own_outage_has_its_own_section_and_is_no_event() -> None:
    from collector.detect.monitor import collector_downtime

    down = collector_downtime(NOW.timestamp() - 3600, NOW.timestamp() - 3420, 90.0)
    assert down is not None
    page = status_page([EventView.from_json(down)], [], NOW)
    assert "No open events" in page  # not an event about the Internet
    assert "When Kuzot could not observe" in page and "The collector was down." in page
    assert "From 2024-03-10 11:00 to 2024-03-10 11:03 UTC, 3 min." in page
    assert f'href="/events/{down["id"]}"' in page
    assert 'class="card shutdown"' not in page


async def save_outside_signal(collector: RunningCollector, now: datetime) -> None:
    """Two days of outside-in rounds as the prober saves them: ElCat answers in full until
    three hours ago, then a tenth of its blocks; Kazakhtelecom 97% throughout."""
    hourly = HourlyShare()
    t = now.timestamp() - 48 * 3600
    while t <= now.timestamp():
        hourly.add("KG", "AS8449", t, 0.1 if t > now.timestamp() - 3 * 3600 else 1.0)
        hourly.add("KZ", "AS9198", t, 0.97)
        t += 600
    await collector.app[store_key].save_state(OUTSIDE_STATE, hourly.to_json(),
                                              now.strftime("%Y-%m-%d %H:%M:%S"))


async def test_collector_serves_the_page_and_event_pages(tmp_path: Path) -> None:
    async with running_collector(tmp_path, public_url="https://status.example.org") as collector:
        await collector.feed_wave()
        await collector.publish(fleet_events(datetime.now(UTC)))
        await save_outside_signal(collector, datetime.now(UTC))
        async with aiohttp.ClientSession() as session:

            async def get(path: str, status: int = 200, **headers: str) -> tuple[Any, str]:
                async with session.get(collector.base + path, headers=headers) as response:
                    assert response.status == status, (path, await response.text())
                    assert_security_headers(response.headers)
                    return response, await response.text()

            response, page = await get("/")
            assert response.content_type == "text/html"
            assert response.headers["Content-Language"] == "en"
            assert "Accept-Language" in response.headers["Vary"]
            _, russian = await get("/", **{"Accept-Language": "ru-RU,ru;q=0.9"})
            _, kazakh = await get("/?lang=kk", **{"Accept-Language": "ru"})
            response, event = await get("/events/ev-kz-block")
            _, missing = await get("/events/nope", 404)
            await get("/no/such/route", 404)
            for bad in ("/?lang=fr", "/?lang=ru&lang=en", "/?x=1", "/events/ev-kz-block?q=1",
                        "/events.atom?cc=kg", "/api/v1/events?limit=x"):
                response, body = await get(bad, 400)
                assert response.content_type == "application/json"
                assert json.loads(body)["error"]
            response, atom = await get("/events.atom")
            assert response.content_type == "application/atom+xml"
            _, atom_kg = await get("/events.atom?cc=KG&lang=ru")
    text = text_of(page)
    assert "Internet shutdown in Kyrgyzstan" in text and "ElCat (AS8449)" in text
    # The outside-in signal, from the store, on the events' hour grid: ElCat's last hours low.
    outside = page[page.index('id="outside"'):]
    assert "Seen from outside the country, hour by hour" in text
    assert "Kyrgyzstan · ElCat (AS8449)" in outside and "Kazakhstan · Kazakhtelecom" in outside
    assert "10% of the address blocks answer" in outside
    assert "97% of the address blocks answer" in outside
    assert "отвечают 10% блоков адресов" in russian
    assert "vlast.kz" in text and "kloop.kg" in text  # the latest result per target
    assert "Сейчас: 3 открытых события" in text_of(russian)
    assert '<html lang="kk">' in kazakh and "Елдер бойынша" in kazakh
    assert "These sites and services cannot be reached: vlast.kz." in text_of(event)
    # The measurement behind the event, from the store, linked to its document.
    uids = re.findall(r'href="/api/v1/measurement/(kz-almaty-1-[0-9a-f]+)"', event)
    assert len(uids) == 1
    assert "No such event" in text_of(missing) and '<html lang="en">' in missing
    feed = ElementTree.fromstring(atom)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert len(entries) == 3
    links = {e.find("a:link", ns).get("href") for e in entries}  # type: ignore[union-attr]
    assert "https://status.example.org/events/ev-kz-block" in links
    titles = [e.findtext("a:title", namespaces=ns) for e in entries]
    assert "Blocking in Kazakhstan (confirmed)" in titles
    summary = next(e.findtext("a:summary", namespaces=ns) for e in entries
                   if e.findtext("a:id", namespaces=ns, default="").endswith("ev-kz-block"))
    assert summary is not None and "Where: Kazakhstan, on Kazakhtelecom (AS9198)." in summary
    kg = ElementTree.fromstring(atom_kg)
    assert kg.findtext("a:title", namespaces=ns) == "Kuzot: события (Кыргызстан)"
    assert [e.findtext("a:title", namespaces=ns) for e in kg.findall("a:entry", ns)] == [
        "Отключение интернета: Кыргызстан (вероятно)"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium not installed (Debian: chromium)")
    pytest.skip("chromium not installed (Debian: chromium)")


# Chromium is kept on loopback: every name but 127.0.0.1 fails to resolve, and its background
# services (updates, sync, metrics) are off.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
    "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--hide-scrollbars", "--virtual-time-budget=5000",
]

# The harness page (test only) puts a page of the collector in a frame of the given width and
# writes what a reader would meet into its own DOM: the document's width, elements reaching past
# it, the headings in order, text whose contrast with its background is below WCAG AA, and the
# visible text.
HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="PATH" style="width:WIDTHpx;height:900px;border:0"></iframe>
<pre id="out">waiting</pre>
<script>
function rgb(text) {
  var m = text.match(/[0-9.]+/g).map(Number);
  return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
}
function lum(c) {
  var f = function (v) {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function background(w, el) {
  for (; el && el.nodeType === 1; el = el.parentElement) {
    var c = rgb(w.getComputedStyle(el).backgroundColor);
    if (c.a > 0) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
}
document.getElementById('f').addEventListener('load', function () {
  var w = document.getElementById('f').contentWindow, d = w.document;
  var width = d.documentElement.clientWidth, wide = [], low = [], heads = [];
  d.querySelectorAll('body *').forEach(function (el) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') return;
    var box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1) wide.push(el.tagName + '.' + el.className);
    if (/^H[1-6]$/.test(el.tagName)) heads.push(el.tagName + ' ' + el.textContent.trim());
    var own = Array.prototype.some.call(el.childNodes, function (n) {
      return n.nodeType === 3 && n.textContent.trim(); });
    if (own && box.width > 0) {
      var style = w.getComputedStyle(el), fg = lum(rgb(style.color)), bg = lum(background(w, el));
      var ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
      var needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
      if (ratio < needed) {
        low.push(el.tagName + ' ' + ratio.toFixed(2) + ' ' + el.textContent.trim().slice(0, 40));
      }
    }
  });
  document.getElementById('out').textContent = JSON.stringify({
    scrollWidth: d.documentElement.scrollWidth, width: width, wide: wide, headings: heads,
    lowContrast: low, lang: d.documentElement.lang, text: d.body.innerText,
    cell: d.querySelector('td') ? w.getComputedStyle(d.querySelector('td')).display : null});
});
</script></body></html>"""


async def run_chromium(*args: str, profile: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()


ARTIFACTS = Path(os.environ.get("KUZOT_TEST_ARTIFACTS", REPO / "var" / "artifacts"))


def read_harness(dom: str) -> dict[str, Any]:
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    seen: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return seen


def check_png(shot: Path, width: int, height: int) -> None:
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (width, height)
    assert datetime.now(UTC) - datetime.fromtimestamp(shot.stat().st_mtime, UTC) < \
        timedelta(minutes=5)


def check_headings(headings: list[str]) -> None:
    """One h1, and no level skipped on the way down."""
    levels = [int(h[1]) for h in headings]
    assert levels.count(1) == 1 and levels[0] == 1, headings
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), headings


@pytest.mark.parametrize("width", [390, 1280])
async def test_readers_see_the_pages_in_chromium(tmp_path: Path, width: int) -> None:
    """At phone and desktop width, in English and Russian, the status page and an event page
    fit the width (nothing cut or reaching past it), have a sound heading outline and text in
    WCAG AA contrast; screenshots are kept as test artefacts."""
    chromium()
    pages = {"status": "/", "status-ru": "/?lang=ru", "event": "/events/ev-kz-block",
             "event-ru": "/events/ev-kg-shutdown?lang=ru"}
    async with running_collector(tmp_path) as collector:
        await collector.feed_wave()
        await collector.publish(fleet_events(datetime.now(UTC)))
        await save_outside_signal(collector, datetime.now(UTC))

        async def proxy(request: web.Request) -> web.Response:
            async with aiohttp.ClientSession() as session, session.get(
                    collector.base + request.path_qs) as response:
                # The collector's policy, but for frame-ancestors, so that the harness may
                # frame the page and measure it as styled under that policy.
                policy = "; ".join(
                    d for d in response.headers["Content-Security-Policy"].split("; ")
                    if not d.startswith("frame-ancestors"))
                return web.Response(text=await response.text(), content_type="text/html",
                                    headers={"Content-Security-Policy": policy})

        async def harness(request: web.Request) -> web.Response:
            page = HARNESS.replace("PATH", pages[request.match_info["name"]]).replace(
                "WIDTH", str(width))
            return web.Response(text=page, content_type="text/html")

        # Same origin for the frame and the harness, so the harness may read the frame.
        app = web.Application()
        app.router.add_get("/harness/{name}", harness)
        app.router.add_get("/{tail:.*}", proxy)
        seen = {}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        async with serve_app(app) as port:
            for name, path in pages.items():
                dom = await run_chromium("--dump-dom", f"http://127.0.0.1:{port}/harness/{name}",
                                         profile=tmp_path / f"profile-{name}")
                seen[name] = read_harness(dom)
                shot = ARTIFACTS / f"{name}-{width}.png"
                shot.unlink(missing_ok=True)
                await run_chromium(f"--screenshot={shot}", f"--window-size={width},1600",
                                   collector.base + path, profile=tmp_path / f"shot-{name}")
                check_png(shot, width, 1600)
    for name, result in seen.items():
        assert result["scrollWidth"] <= width, (name, "wider than the window")
        assert result["wide"] == [], (name, result["wide"])
        assert result["lowContrast"] == [], (name, result["lowContrast"])
        check_headings(result["headings"])
    assert seen["status"]["lang"] == "en" and seen["status-ru"]["lang"] == "ru"
    text = seen["status"]["text"]
    assert "Now: 3 open events" in text
    assert "Blocking in Kazakhstan" in text and "Kazakhtelecom (AS9198)" in text
    assert "Last 7 days, hour by hour" in text
    assert "Seen from outside the country, hour by hour" in text
    # On a phone the tables become labelled blocks instead of being cut.
    assert seen["status"]["cell"] == ("block" if width == 390 else "table-cell")
    assert "Сейчас: 3 открытых события" in seen["status-ru"]["text"]
    assert "What the probes saw" in seen["event"]["text"]
    assert "Отключение интернета: Кыргызстан" in seen["event-ru"]["text"]


async def test_the_layout_checks_can_fail(tmp_path: Path) -> None:
    """The harness's checks on a page built to fail them: pale text, a skipped heading level
    and a table wider than a phone are all reported."""
    chromium()
    bad = ("<!doctype html><html lang=\"en\"><body><h1>Title</h1><h3>Skipped</h3>"
           "<p style=\"color:#c8c8c8\">pale</p><table><tr>"
           + "<td>wide-cell-content</td>" * 30 + "</tr></table></body></html>")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=bad, content_type="text/html")

    async def harness(request: web.Request) -> web.Response:
        return web.Response(text=HARNESS.replace("PATH", "/bad").replace("WIDTH", "390"),
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/bad", page)
    app.router.add_get("/harness", harness)
    async with serve_app(app) as port:
        seen = read_harness(await run_chromium(
            "--dump-dom", f"http://127.0.0.1:{port}/harness", profile=tmp_path / "profile"))
    assert seen["scrollWidth"] > 390 and seen["wide"]
    assert any(" pale" in line for line in seen["lowContrast"]), seen["lowContrast"]
    with pytest.raises(AssertionError):
        check_headings(seen["headings"])


async def chromium_console(url: str, profile: Path) -> str:
    """What Chromium's console said while loading ``url`` (its log on stderr)."""
    process = await asyncio.create_subprocess_exec(
        chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
        "--v=0", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()[-2000:]
    assert "Kuzot" in out.decode()
    return err.decode()


async def test_chromium_blocks_nothing_on_the_page_under_its_policy(tmp_path: Path) -> None:
    """Loaded straight from the collector, with every header: no CSP violation is reported.
    The same page under a policy with a wrong style hash is reported, so the check can fail."""
    chromium()
    async with running_collector(tmp_path) as collector:
        await collector.feed_wave()
        await collector.publish(fleet_events(datetime.now(UTC)))
        console = await chromium_console(collector.base + "/", tmp_path / "profile-csp")

        async def tampered(request: web.Request) -> web.Response:
            return web.Response(
                text=status_page([], [], datetime.now(UTC)), content_type="text/html",
                headers={**HEADERS, "Content-Security-Policy": HEADERS[
                    "Content-Security-Policy"].replace(STYLE_HASH, "sha256-" + "A" * 43 + "=")})

        app = web.Application()
        app.router.add_get("/", tampered)
        async with serve_app(app) as port:
            control = await chromium_console(f"http://127.0.0.1:{port}/",
                                             tmp_path / "profile-tampered")
    assert "Content Security Policy" in control, control[-2000:]
    assert "Content Security Policy" not in console, console[-2000:]


def test_the_outside_chart_draws_each_hours_share_on_the_events_grid() -> None:
    now = datetime(2026, 3, 9, 12, 30, tzinfo=UTC)
    shares: list[float | None] = [None] * (charts.HOURS - 3) + [1.0, 0.5, 0.0]
    svg = str(charts.share_svg([("ElCat <b>", shares)], now, lambda s: f"{s:.0%} up",
                               "outside"))
    assert "ElCat &lt;b&gt;" in svg and "<b>" not in svg
    # One grey band for the hours without rounds, then three bars as high as their share.
    assert svg.count('fill="#e4e4e4"') == 1
    bars = re.findall(r'<rect x="(\d+)" y="([\d.]+)" width="5" height="([\d.]+)"', svg)
    assert [(int(x), float(h)) for x, _, h in bars] == [
        ((charts.HOURS - 3) * charts.CELL, charts.BAR), ((charts.HOURS - 2) * charts.CELL,
                                                         charts.BAR / 2),
        ((charts.HOURS - 1) * charts.CELL, 1.0)]
    assert "09.03 12:00–13:00 UTC: 0% up" in svg and "09.03 11:00–12:00 UTC: 50% up" in svg


def test_the_status_page_shows_the_outside_chart_only_with_data() -> None:
    plain = status_page(events(), LATEST, NOW, settings("en"))
    assert 'id="outside"' not in plain
    shares: list[float | None] = [0.9] * charts.HOURS
    page = status_page(events(), LATEST, NOW, settings("en"),
                       outside={("KZ", "AS9198"): shares})
    assert 'id="outside"' in page and "90% of the address blocks answer" in page
