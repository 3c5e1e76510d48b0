"""The world namespace's services: sites over HTTP and HTTPS, DNS, and the collector's TLS front.

Run inside the world namespace as ``python -m tests.lab.world CONFIG.json`` (the lab does
it). Each site listens only on its own addresses (IPv4, and IPv6 for a site that has one);
several names may share one (co-hosting), in which case the TLS certificate is chosen by SNI
and the page by the Host header. The authoritative server answers for every lab name; the
public resolver forwards to it after a delay that stands for the distance to a resolver
abroad; both, and the control, listen on IPv4 and IPv6. A SOCKS5 proxy (a Tor relay beyond
the censor) reaches the world's addresses, resolving the lab's names itself. The collector
itself runs as its own process (``python -m collector serve``) behind a TLS front, as an
operator would run it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.helpers.socks5_server import Socks5Server
from tests.lab import dnsd, pages, relay
from tests.lab.plan import (
    AUTH_DNS,
    AUTH_DNS6,
    CONTROL_IP,
    CONTROL_IP6,
    PUBLIC_RESOLVER,
    PUBLIC_RESOLVER6,
    PUBLIC_RESOLVER_DELAY,
    WORLD_NET,
)


def _site_app(sites: dict[str, dict[str, Any]], scheme: str) -> web.Application:
    """One application per listener; the Host header picks the site."""

    async def handler(request: web.Request) -> web.StreamResponse:
        name = request.host.rsplit(":", 1)[0].lower()
        site = sites.get(name) or next(iter(sites.values()))
        behaviour = str(site[scheme])
        headers = {"X-Kuzot-Site": site["name"]}
        if behaviour.startswith("redirect:"):
            raise web.HTTPFound(behaviour.removeprefix("redirect:"), headers=headers)
        if behaviour.startswith("redirects:"):
            left = int(behaviour.split(":")[1])
            if request.path.startswith("/hop/"):
                left = int(request.path.removeprefix("/hop/"))
            if left > 0:
                raise web.HTTPFound(f"/hop/{left - 1}", headers=headers)
        if behaviour == "big":
            return web.Response(body=pages.big_page(site["name"]), content_type="text/html",
                                headers=headers)
        return web.Response(text=pages.site_page(site["name"]), content_type="text/html",
                            headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


def _tls_context(sites: dict[str, dict[str, Any]]) -> ssl.SSLContext:
    """A server context that presents each name's own certificate, chosen by SNI."""
    contexts: dict[str, ssl.SSLContext] = {}
    for name, site in sites.items():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(site["cert_file"], site["key_file"])
        contexts[name] = context
    default = next(iter(contexts.values()))

    def choose(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.context = contexts.get((server_name or "").lower(), default)

    default.sni_callback = choose
    return default


async def _serve_sites(config: dict[str, Any]) -> list[web.AppRunner]:
    by_listener: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for site in config["sites"]:
        for scheme in ("http", "https"):
            if site[scheme] in ("none", "control"):  # "control": the collector's front
                continue
            for address in (site["ip"], site.get("ip6")):
                if address:
                    by_listener.setdefault((address, scheme), {})[site["name"]] = site
    runners = []
    for (ip, scheme), sites in by_listener.items():
        runner = web.AppRunner(_site_app(sites, scheme), access_log=None)
        await runner.setup()
        context = _tls_context(sites) if scheme == "https" else None
        await web.TCPSite(runner, ip, 443 if scheme == "https" else 80,
                          ssl_context=context).start()
        runners.append(runner)
    return runners


async def _control_front(config: dict[str, Any]) -> asyncio.Server:
    """TLS on the control's public address, relayed to the collector on loopback; also on the
    address of each other name of the collector (a site whose HTTPS is ``control``), each
    with its own certificate, chosen by SNI."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config["control"]["cert_file"], config["control"]["key_file"])
    aliases = {site["name"]: site for site in config["sites"] if site["https"] == "control"}
    if aliases:
        by_name = {name: _tls_context({name: site}) for name, site in aliases.items()}

        def choose(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            sock.context = by_name.get((server_name or "").lower(), context)

        context.sni_callback = choose
    host, _, port = config["control"]["backend"].rpartition(":")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        await relay.splice((reader, writer), upstream)

    addresses = [CONTROL_IP, CONTROL_IP6, *(site["ip"] for site in aliases.values())]
    return await asyncio.start_server(handle, addresses, 443, ssl=context)


async def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    zone = config["zone"]
    for auth in (AUTH_DNS, AUTH_DNS6):
        await dnsd.serve(auth, dnsd.authoritative(zone))
    for public in (PUBLIC_RESOLVER, PUBLIC_RESOLVER6):
        await dnsd.serve(public, dnsd.forwarder(AUTH_DNS, delay=PUBLIC_RESOLVER_DELAY))
    runners = await _serve_sites(config)
    front = await _control_front(config)
    proxy = config["proxy"]
    socks = Socks5Server(hosts=proxy["hosts"], bind=proxy["ip"], port=proxy["port"],
                         allowed=(WORLD_NET,))
    await socks.start()
    Path(config["ready_file"]).write_text("ready\n")
    try:
        await asyncio.Event().wait()
    finally:
        await socks.stop()
        front.close()
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
