"""Redirects from a public address into loopback and private space, inside a private network
namespace: ``unshare --net python -m tests.probe.hostile.netns_redirect``.

Only inside a namespace of its own can a test serve a site from a globally routable address
(``PUBLIC``, given to ``lo`` here, where no packet can leave) next to a "secret" service on
loopback and on a private address, which is the situation the redirect policy is about. Runs
``probe check`` on a site that redirects to each and prints one JSON object per case.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

from tests.helpers import hostile_servers as servers
from tests.probe.hostile.run import run_check

PUBLIC = "46.36.210.10"
PRIVATE = "10.9.9.9"
SECRET = b"volunteer-router-admin-page"


async def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in (PUBLIC, PRIVATE):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    results = []
    async with servers.serve(servers.page(SECRET), host="0.0.0.0") as secret:
        port = secret.port
        cases = {
            "loopback literal": f"http://127.0.0.1:{port}/",
            "loopback name": f"http://localhost:{port}/",
            "private literal": f"http://{PRIVATE}:{port}/",
            "public": f"http://{PUBLIC}:{port}/",
        }
        for name, location in cases.items():
            async with servers.serve(servers.redirect(location.encode()), host=PUBLIC) as site:
                checked = await run_check(site.url())
            results.append({"case": name, "returncode": checked.returncode,
                            "stdout": checked.stdout.decode(), "peak": checked.peak_rss_bytes})
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
