"""The probe's measurements read by OONI's own loader (``oonidata``), one of every kind.

Each measurement is produced by the real probe against real loopback servers (the censored
network of ``test_web_loopback``): a page that loads, over HTTP and HTTPS; DNS failures; an
extra UDP resolver (whose ``rcode`` OONI reads as an integer); a DoH resolver; TCP and TLS
failures; interception; an HTTP diff; a redirect; a page that is not UTF-8. Each must load with
OONI's loader and carry no key OONI does not define without the ``x_`` prefix. The same checks
pass on OONI's own measurements (the vendored QA corpus), which shows they judge what OONI
writes, and fail on the format Kuzot wrote before (a named ``rcode``).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme

from probe.core.measurement import envelope
from tests.helpers import ooni_format
from tests.helpers.loopback import DOMAIN, SITE_IP, UPSTREAM_IP, middlebox
from tests.helpers.servers import NOERROR, NXDOMAIN, page_app, serve_app
from tests.probe.nettests.web_connectivity.test_web_loopback import (  # noqa: F401 (the fixture is used by name)
    OTHER_PAGE,
    Network,
    network,
    tls_context,
)

Keys = dict[str, Any]


def measurement(url: str, keys: Keys) -> dict[str, Any]:
    return envelope(test_name="web_connectivity", input_=url, test_keys=keys,
                    started=datetime.now(UTC), runtime=1.0, cc="KG", asn="AS12345")


# --- OONI's own measurements ----------------------------------------------------------------


@pytest.mark.parametrize("path", ooni_format.corpus_files(), ids=lambda p: p.stem)
def test_oonis_own_measurements_load_and_pass_the_same_checks(path: Any) -> None:
    m = ooni_format.read(path)
    if path.parent.name == "generated":
        # OONI's QA generator writes no ``annotations``, which every published measurement
        # carries and this oonidata requires; the real-world cases ("manual") have them.
        assert "annotations" not in m
        m["annotations"] = {}
    loaded = ooni_format.load(m)
    assert loaded.test_keys.blocking == m["test_keys"]["blocking"]
    assert ooni_format.problems(m) == []


def test_the_corpus_holds_all_56_measurements() -> None:
    assert len(ooni_format.corpus_files()) == 56


# --- the probe's measurements -----------------------------------------------------------------

Case = Callable[[Network, trustme.CA], Awaitable[tuple[str, Keys]]]


async def ok_http(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), host=SITE_IP, port=net.port):
        return url, await net.measure(url)


async def ok_https(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"https://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), tls_context(ca), host=SITE_IP, port=net.port):
        return url, await net.measure(url)


async def dns_nxdomain(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    net.isp[(DOMAIN, "*")] = [(NXDOMAIN, [])]
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), host=SITE_IP, port=net.port):
        return url, await net.measure(url)


async def extra_resolver(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    net.isp[(DOMAIN, "AAAA")] = [(NOERROR, [])]
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), host=SITE_IP, port=net.port):
        return url, await net.measure(
            url, udp_resolvers=(f"127.0.0.1:{net.isp_port}",))


async def injected_dns(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    net.isp[(DOMAIN, "A")] = [(NOERROR, ["127.0.0.20"]), (NOERROR, [SITE_IP])]
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), host=SITE_IP, port=net.port):
        return url, await net.measure(
            url, udp_resolvers=(f"127.0.0.1:{net.isp_port}",))


async def tcp_refused(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"http://{DOMAIN}:{net.port}/"
    return url, await net.measure(url)


async def tls_reset(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"https://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), tls_context(ca), host=UPSTREAM_IP, port=net.port), \
            middlebox(net.port, "reset"):
        return url, await net.measure(url, tls_timeout=0.5)


async def tls_bad_certificate(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"https://{DOMAIN}:{net.port}/"
    context = tls_context(ca, "other.example.net")
    async with serve_app(page_app(), context, host=SITE_IP, port=net.port):
        return url, await net.measure(url)


async def http_diff(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(), host=UPSTREAM_IP, port=net.port), \
            middlebox(net.port, "reply", reply=OTHER_PAGE):
        return url, await net.measure(url)


async def redirect(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    from aiohttp import web

    async def old(request: web.Request) -> web.Response:
        raise web.HTTPFound("/new")

    async def new(request: web.Request) -> web.Response:
        return web.Response(text="<title>moved here</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/old", old)
    app.router.add_get("/new", new)
    url = f"http://{DOMAIN}:{net.port}/old"
    async with serve_app(app, host=SITE_IP, port=net.port):
        return url, await net.measure(url)


CP1251_PAGE = "<title>Доступ ограничен</title>".encode("cp1251")


async def not_utf8(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    from aiohttp import web

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=CP1251_PAGE, content_type="text/html", charset="windows-1251")

    app = web.Application()
    app.router.add_get("/", page)
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(app, host=SITE_IP, port=net.port):
        return url, await net.measure(url)


LARGE_PAGE = "<title>Жаңылыктар</title>" + "Кыргызстан жаңылыктары. " * 30000  # ~1.2 MB


async def large_page(net: Network, ca: trustme.CA) -> tuple[str, Keys]:
    url = f"http://{DOMAIN}:{net.port}/"
    async with serve_app(page_app(LARGE_PAGE), host=SITE_IP, port=net.port):
        return url, await net.measure(url)


CASES: dict[str, tuple[Case, tuple[str, str | None]]] = {
    "ok_http": (ok_http, ("ok", None)),
    "ok_https": (ok_https, ("ok", None)),
    "dns_nxdomain": (dns_nxdomain, ("blocked", "dns")),
    "extra_resolver": (extra_resolver, ("ok", None)),
    "injected_dns": (injected_dns, ("blocked", "dns")),
    "tcp_refused": (tcp_refused, ("down", "tcp")),
    "tls_reset": (tls_reset, ("blocked", "tls")),
    "tls_bad_certificate": (tls_bad_certificate, ("down", "tls")),
    "http_diff": (http_diff, ("blocked", "http")),
    "redirect": (redirect, ("ok", None)),
    "not_utf8": (not_utf8, ("ok", None)),
    "large_page": (large_page, ("ok", None)),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_the_probes_measurement_loads_with_oonis_loader(
    network: Network, ca: trustme.CA, name: str  # noqa: F811 (the fixture)
) -> None:
    case, (verdict, layer) = CASES[name]
    url, keys = await case(network, ca)
    analysis = keys["analysis"]
    assert (analysis["verdict"], analysis["layer"]) == (verdict, layer), analysis
    m = measurement(url, keys)
    loaded = ooni_format.load(m)
    assert ooni_format.problems(m) == []
    # What OONI's tooling reads came through its model with its types.
    assert loaded.input == url and loaded.test_keys.blocking == keys["blocking"]
    for query, model in zip(keys["queries"], loaded.test_keys.queries, strict=True):
        assert model.rcode == query.get("rcode") and model.engine in (
            "getaddrinfo", "udp", "doh")
    for request, model in zip(keys["requests"], loaded.test_keys.requests, strict=True):
        if request["response"] is not None:
            assert model.response.code == request["response"]["code"]
            # A body cut at 512 KiB loses the bytes of a character cut in two, if any.
            assert 0 <= request["response"]["x_body_length"] - \
                len(model.response.body_bytes or b"") <= 3
    for handshake in loaded.test_keys.tls_handshakes:
        assert handshake.no_tls_verify is False and handshake.network == "tcp"


async def test_rcodes_are_integers_and_a_named_one_is_rejected(
    network: Network, ca: trustme.CA  # noqa: F811 (the fixture)
) -> None:
    url, keys = await extra_resolver(network, ca)
    udp = {q["query_type"]: q for q in keys["queries"] if q["engine"] == "udp"}
    assert (udp["A"]["rcode"], udp["AAAA"]["rcode"]) == (0, 0)
    old = measurement(url, copy.deepcopy(keys))
    next(q for q in old["test_keys"]["queries"] if q["engine"] == "udp")["rcode"] = "NOERROR"
    with pytest.raises(AssertionError, match="oonidata rejects"):
        ooni_format.load(old)
    assert any("rcode" in p for p in ooni_format.problems(old))


async def test_a_large_page_is_cut_at_oonis_snapshot_and_stays_text(
    network: Network, ca: trustme.CA  # noqa: F811 (the fixture)
) -> None:
    _url, keys = await large_page(network, ca)
    response = keys["requests"][0]["response"]
    assert response["body_is_truncated"] is True
    assert response["x_body_length"] == 512 * 1024
    assert isinstance(response["body"], str)
    assert LARGE_PAGE.startswith(response["body"])
    assert len(response["body"].encode()) >= 512 * 1024 - 3
    assert keys["analysis"]["verdict"] == "ok"


async def test_a_body_that_is_not_utf8_is_kept_in_base64(
    network: Network, ca: trustme.CA  # noqa: F811 (the fixture)
) -> None:
    _url, keys = await not_utf8(network, ca)
    body = keys["requests"][0]["response"]["body"]
    assert body["format"] == "base64"
    assert ooni_format.load(measurement(_url, keys)).test_keys.requests[0].response \
        .body_bytes == CP1251_PAGE


def test_unknown_keys_without_the_prefix_are_named() -> None:
    m = ooni_format.read(ooni_format.corpus_files()[0])
    m["test_keys"]["queries"][0]["cnames"] = []
    m["test_keys"]["tcp_connect"][0]["status"]["operation"] = "connect"
    m["test_keys"]["queries"][0]["x_cnames"] = []
    assert ooni_format.problems(m) == ["test_keys.queries[].cnames",
                                       "test_keys.tcp_connect[].status.operation"]


GROUPS = {
    "whatsapp": lambda port: {"web": {"urls": [f"https://localhost:{port}/"]},
                              "registration": {"urls": [f"https://localhost:{port}/"]},
                              "endpoints": {"addresses": ["127.0.0.1"], "ports": [port]}},
    "signal": lambda port: {"backend": {"urls": [f"https://localhost:{port}/"]}},
    "youtube": lambda port: {"web": {"urls": [f"https://localhost:{port}/"]},
                             "api": {"addresses": ["127.0.0.1"], "ports": [port]}},
}


@pytest.mark.parametrize("name", list(GROUPS))
async def test_a_platform_measurement_loads_too(
    ca: trustme.CA, ca_file: str, collector_client: Any, name: str
) -> None:
    """Platform checks record the same DNS, TCP, TLS and HTTP records; WhatsApp and Signal
    have OONI models of their own, other platforms load as OONI's base measurement."""
    from probe.config import platforms as platform_config
    from probe.nettests.control_client import ControlClient
    from probe.nettests.platforms import measure as platforms
    from probe.nettests.platforms.run import run_platform
    from tests.helpers.servers import server_context

    control = ControlClient(str(collector_client.make_url("")).rstrip("/"), timeout=10)
    async with serve_app(page_app(), server_context(ca, "localhost")) as port:
        config = platform_config.build_platforms({
            "timeouts": {"dns": 2, "connect": 2, "tls": 2, "http": 3, "control": 10},
            "platforms": {name: {"groups": GROUPS[name](port)}}})
        options = platforms.PlatformOptions(ca_file=ca_file, fingerprint=False)
        m = await run_platform(name, config, options, control, cc="KG", asn="AS12345")
    loaded = ooni_format.load(m)
    assert loaded.test_name == m["test_name"], m["test_name"]
    assert type(loaded.test_keys).__name__ == {"whatsapp": "WhatsappTestKeys", "signal":
                                               "SignalTestKeys"}.get(name, "BaseTestKeys")
    assert m["test_keys"]["requests"] and m["test_keys"]["tls_handshakes"]
    if name != "youtube":  # OONI's base model reads no test keys
        assert [r.response.code for r in loaded.test_keys.requests] == \
            [r["response"]["code"] for r in m["test_keys"]["requests"]]
