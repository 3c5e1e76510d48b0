"""``GET /api/v1/targets?probe_cc=KG``: the target lists a probe of that country measures.

Changing a list used to mean editing files on every volunteer's machine. The collector serves
them from a directory the operator edits (``target_lists.directory``, e.g. a copy of
``configs/targets``): the country's list (``kg.csv``) plus the global one
(``target_lists.global_list``), in either CSV format the probe reads. The directory is watched
by looking at the two files' size and modification time on each request; a changed file is
read again, and a file that no longer loads leaves the last good version in service (logged),
so a typo never takes the lists away from the probes.

Each answer has a ``version`` (a digest of its entries) sent as a strong ``ETag``: a probe
that sends it back in ``If-None-Match`` gets ``304 Not Modified`` and no body. Every entry
carries its cadence (``interval_s``; null: the probe's ``schedule.interval``) and a
``priority``: ``high`` for entries measured at the probe's cadence (the curated sites,
platforms and canaries), ``normal`` for those with a cadence of their own (Citizen Lab's
entries, once a day). The operator overrides an entry's priority with ``collector targets
set-priority`` (``priorities.csv`` in the directory, watched like the lists): ``high`` makes
the probe measure it at its cadence whatever its category, ``low`` leaves it to the rotating
sample whatever its category (``probe.daemon.pacing``).
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from collector.api.auth import authenticate
from collector.api.served_lists import ServedLists
from collector.config import TargetListsConfig
from collector.keys import served_lists_key
from probe.core.typed_config import ConfigError


def served_lists(config: TargetListsConfig) -> ServedLists | None:
    if config.directory is None:
        return None
    return ServedLists(Path(config.directory), config.global_list)


def _json_error(status: type[web.HTTPException], reason: str) -> web.HTTPException:
    return status(text=json.dumps({"error": reason}), content_type="application/json")


async def get_targets(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/targets?probe_cc=CC (authenticated like uploads)."""
    await authenticate(request)
    cc = request.query.get("probe_cc", "")
    if not (len(cc) == 2 and cc.isascii() and cc.isalpha() and cc.isupper()):
        raise _json_error(web.HTTPBadRequest, "probe_cc: not a two-letter upper-case country "
                                              "code")
    lists = request.app[served_lists_key]
    if lists is None:
        raise _json_error(web.HTTPNotFound, "this collector serves no target lists "
                                            "(target_lists.directory)")
    try:
        document = lists.document(cc)
    except ConfigError as exc:
        raise _json_error(web.HTTPNotFound, f"no target list for {cc}: {exc}") from exc
    etag = f'"{document["version"]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    return web.json_response(document, headers=headers)
