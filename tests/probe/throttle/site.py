"""A plain HTTPS site serving one large object, run inside a lab namespace.

``python -m tests.probe.throttle.site --listen IP:PORT --cert PEM --key PEM --bytes N``.
It plays the target and the co-hosted baseline of the throttling scenarios: a real server
behind a real (shaped or policed) path, nothing simulated in the server itself.
"""

from __future__ import annotations

import argparse
import os
import ssl

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--bytes", type=int, default=4 * 1024 * 1024)
    args = parser.parse_args()
    body = os.urandom(args.bytes)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    host, _, port = args.listen.rpartition(":")
    web.run_app(app, host=host, port=int(port), ssl_context=context, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
