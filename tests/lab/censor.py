"""The censor namespace's services: the ISP resolver, blockpage, proxy and interception box.

Run inside the censor namespace as ``python -m tests.lab.censor CONFIG.json``. The packet
rules (iptables, tc) and the on-path injector (``tests.lab.injector``) are separate: this
process only runs the servers an ISP operates on its own addresses.

* ISP resolver: forwards to the world's authoritative server, except for the names it lies
  about (NXDOMAIN, SERVFAIL, silence, an empty answer, or a chosen address).
* Blockpage server on :80 (nothing on :443, as many ISPs' stub servers), a second server
  with a page no fingerprint knows, a third with a Russian blockpage no fingerprint knows,
  and a redirector that sends every request to the blockpage host's address (as Kyrgyz ISPs
  redirect to theirs).
* Transparent proxy: reads the Host header or the ClientHello's SNI and relays to the real
  site, so the page and the certificate are the site's own.
* Interception box: terminates TLS with a certificate from another CA, as Kazakhstan's
  2019-2020 "national security certificate" did.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.lab import dnsd, pages, relay
from tests.lab.plan import (
    AUTH_DNS,
    BLOCKPAGE,
    ISP_RESOLVER,
    MITM,
    NOTICE,
    PROXY,
    REDIRECTOR,
    REDIRECTOR_UNKNOWN,
    UNKNOWN_BLOCKPAGE,
)


async def _static(ip: str, port: int, body: str, context: ssl.SSLContext | None = None,
                  status: int = 200) -> web.AppRunner:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=body, status=status, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, ip, port, ssl_context=context).start()
    return runner


async def _redirector(ip: str, port: int, location: str) -> web.AppRunner:
    async def handler(_request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, ip, port).start()
    return runner


async def _proxy(sites: dict[str, str]) -> list[asyncio.Server]:
    """The transparent proxy on :80 and :443; ``sites`` maps a name to its real address."""

    def handler(tls: bool) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                first = await relay.read_first(reader, tls)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                writer.close()
                return
            name = relay.sni_of(first) if tls else relay.host_of(first)
            address = sites.get(name or "")
            if address is None:
                writer.close()
                return
            try:
                upstream = await asyncio.open_connection(address, 443 if tls else 80)
            except OSError:
                writer.close()
                return
            upstream[1].write(first)
            await relay.splice((reader, writer), upstream)

        return handle

    return [await asyncio.start_server(handler(False), PROXY, 80),
            await asyncio.start_server(handler(True), PROXY, 443)]


async def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    await dnsd.serve(ISP_RESOLVER, dnsd.forwarder(AUTH_DNS, timeout=1.0, lies=config["lies"]))
    mitm = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    mitm.load_cert_chain(config["mitm"]["cert_file"], config["mitm"]["key_file"])
    runners = [
        await _static(BLOCKPAGE, 80, pages.BLOCKPAGE),
        await _static(NOTICE, 80, pages.NOTICE),
        await _static(MITM, 443, pages.NOTICE, mitm),
        await _static(UNKNOWN_BLOCKPAGE, 80, pages.UNKNOWN_BLOCKPAGE),
        await _redirector(REDIRECTOR, 80, pages.REDIRECT_TO),
        await _redirector(REDIRECTOR_UNKNOWN, 80, pages.REDIRECT_UNKNOWN_TO),
    ]
    servers = await _proxy(config["sites"])
    Path(config["ready_file"]).write_text("ready\n")
    try:
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
