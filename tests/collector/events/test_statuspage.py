"""The public status page: built from events and latest results (tables), served by the real
collector with its security headers, and read by a real headless Chromium at phone width
under its Content-Security-Policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from collector.api.security import HEADERS
from collector.events.statuspage import STYLE_HASH, network_rows, status_page, timeline
from collector.notify.event import EventView
from tests.helpers.fleet import fleet_events, running_collector
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
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_open_events_come_first_most_severe_first() -> None:
    page = status_page(events(), LATEST, NOW)
    text = text_of(page)
    assert "Now: 3 open events." in text
    order = [text.index(s) for s in ("Internet shutdown in Kyrgyzstan (AS8449)",
                                     "Blocking in Kazakhstan (AS9198)",
                                     "Throttling in Kazakhstan (AS9198)")]
    assert order == sorted(order)
    assert "Since 2024-03-10 09:55 UTC, for 2 h 5 min." in text
    assert "Since 2024-03-08 12:00 UTC, for 2 d 0 h." in text
    assert "Mechanism: tls_timeout; seen by 6 probes." in text
    assert "blocked_share_lower_bound 0.91" in text
    assert 'href="/events/ev-kz-block"' in page


def test_page_needs_nothing_from_outside() -> None:
    page = status_page(events(), LATEST, NOW)
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(https?:)?//', page)   # no external assets or links
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_country_and_network_tables() -> None:
    rows = network_rows(LATEST, [e for e in events() if e.status == "open"])
    by_key = {(r.cc, r.asn): r for r in rows}
    # KG AS8449 has no measurement yet but an open shutdown: it is listed.
    assert set(by_key) == {("KG", "AS8449"), ("KZ", "AS9198"), ("KZ", "AS48716")}
    assert by_key[("KZ", "AS9198")].counts["blocked"] == 1
    assert by_key[("KZ", "AS9198")].worst is not None
    assert by_key[("KZ", "AS9198")].worst.kind == "block"   # block outranks throttling
    assert by_key[("KZ", "AS48716")].worst is None
    text = text_of(status_page(events(), LATEST, NOW))
    assert "Kyrgyzstan Internet shutdown (likely) 1 0 0 0" in text
    assert "Kazakhstan Blocking (confirmed) 2 2 1 0" in text


def test_timeline_marks_each_day_with_the_worst_event() -> None:
    closed = EventView.from_json({
        "id": "old", "kind": "shutdown", "tier": "confirmed", "status": "closed",
        "start": "2024-03-05T20:00:00Z", "end": "2024-03-06T02:00:00Z",
        "updated_at": "2024-03-06T02:00:00Z", "cc": "KZ", "asns": [], "targets": []})
    rows = dict(timeline([*events(), closed], NOW))
    letters = {k: "".join("." if c is None else c.kind[0] for c in v) for k, v in rows.items()}
    # Days 04.03 .. 10.03: the country-wide shutdown of 5-6 March, the block from 8 March.
    assert letters["KZ"] == ".ss.bbb"
    assert letters["KZ AS9198"] == ".ss.bbb"
    assert letters["KG"] == "......s"
    assert letters["KG AS8449"] == "......s"
    assert "KZ AS48716" not in letters


def test_quiet_page() -> None:
    text = text_of(status_page([], [], NOW))
    assert "No open events. Probes keep measuring." in text
    assert "No events in the last seven days." in text


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
    assert "From 2024-03-10 11:00 UTC to 2024-03-10 11:03 UTC (3 min)." in page
    assert f'href="/events/{down["id"]}"' in page
    assert 'class="card shutdown"' not in page and "S</td>" not in page


async def test_collector_serves_the_page_and_event_pages(tmp_path: Path) -> None:
    async with running_collector(tmp_path) as collector:
        await collector.feed_wave()
        await collector.publish(fleet_events(datetime.now(UTC)))
        async with aiohttp.ClientSession() as session:
            async with session.get(collector.base + "/") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                assert_security_headers(response.headers)
                page = await response.text()
            async with session.get(collector.base + "/events/ev-kz-block") as response:
                assert response.status == 200
                assert_security_headers(response.headers)
                event_page = await response.text()
            async with session.get(collector.base + "/events/nope") as response:
                assert response.status == 404
                assert_security_headers(response.headers)
            async with session.get(collector.base + "/no/such/route") as response:
                assert response.status == 404
                assert_security_headers(response.headers)
            async with session.get(collector.base + "/api/v1/events?limit=x") as response:
                assert response.status == 400
                assert_security_headers(response.headers)
    assert "Internet shutdown in Kyrgyzstan (AS8449)" in text_of(page)
    assert "https://24.kg/" in page            # the latest result per target, from the store
    assert "blocked_share_lower_bound" in event_page and "https://vlast.kz/" in event_page


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

# The harness page (test only) puts the status page in a phone-sized frame and writes what
# a reader would meet into its own DOM: the frame document's width and its visible text.
HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="/" style="width:390px;height:800px;border:0"></iframe>
<pre id="out">waiting</pre>
<script>
document.getElementById('f').addEventListener('load', function () {
  var d = document.getElementById('f').contentDocument;
  document.getElementById('out').textContent = JSON.stringify({
    scrollWidth: d.documentElement.scrollWidth, text: d.body.innerText});
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


async def test_a_phone_reader_sees_the_events_in_chromium(tmp_path: Path) -> None:
    import json

    chromium()
    async with running_collector(tmp_path) as collector:
        await collector.feed_wave()
        await collector.publish(fleet_events(datetime.now(UTC)))

        async def proxy(request: web.Request) -> web.Response:
            async with aiohttp.ClientSession() as session, session.get(
                    collector.base + request.path) as response:
                # The collector's policy, but for frame-ancestors, so that the harness may
                # frame the page and measure it as styled under that policy.
                policy = "; ".join(
                    d for d in response.headers["Content-Security-Policy"].split("; ")
                    if not d.startswith("frame-ancestors"))
                return web.Response(text=await response.text(), content_type="text/html",
                                    headers={"Content-Security-Policy": policy})

        async def harness(request: web.Request) -> web.Response:
            return web.Response(text=HARNESS, content_type="text/html")

        # Same origin for the frame and the harness, so the harness may read the frame.
        app = web.Application()
        app.router.add_get("/harness", harness)
        app.router.add_get("/{tail:.*}", proxy)
        async with serve_app(app) as port:
            dom = await run_chromium("--dump-dom", f"http://127.0.0.1:{port}/harness",
                                     profile=tmp_path / "profile-dom")
            artifacts = Path(os.environ.get("KUZOT_TEST_ARTIFACTS", REPO / "var" / "artifacts"))
            artifacts.mkdir(parents=True, exist_ok=True)
            shot = artifacts / "status-page-phone.png"
            shot.unlink(missing_ok=True)
            await run_chromium(f"--screenshot={shot}", "--window-size=390,1400",
                               f"{collector.base}/", profile=tmp_path / "profile-shot")

    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))
    assert seen["scrollWidth"] <= 390, "the page is wider than a phone screen"
    text = seen["text"]
    assert "Now: 3 open events." in text
    assert "Internet shutdown in Kyrgyzstan (AS8449)" in text
    assert "Blocking in Kazakhstan (AS9198)" in text
    assert "Last seven days" in text
    # The screenshot is a real PNG of phone width.
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width == 390 and height == 1400
    assert datetime.now(UTC) - datetime.fromtimestamp(shot.stat().st_mtime, UTC) < \
        timedelta(minutes=5)


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
