"""The redirect policy against the real ``probe check`` process: from a public start, no
redirect reaches loopback or private space, by literal or by name; a public one is followed.

The site needs a globally routable address, so this runs in a network namespace of its own
(``netns_redirect.py``); the loopback-start half of the policy is in
``test_location_tls_dns_hostile.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from probe.core import failures
from tests.helpers import netns
from tests.probe.hostile.netns_redirect import SECRET

pytestmark = pytest.mark.lab


def test_redirects_from_a_public_site_never_reach_the_volunteers_network() -> None:
    netns.require("unshare")
    done = subprocess.run(["unshare", "--net", sys.executable, "-m",
                           "tests.probe.hostile.netns_redirect"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {r["case"]: r for r in json.loads(done.stdout)}
    assert set(results) == {"loopback literal", "loopback name", "private literal", "public"}
    for case in ("loopback literal", "loopback name", "private literal"):
        result = results[case]
        assert result["returncode"] == 0
        requests = json.loads(result["stdout"])["test_keys"]["requests"]
        assert len(requests) == 1, case
        assert requests[0]["failure"] == failures.HTTP_REDIRECT_PRIVATE, case
        assert SECRET.decode() not in result["stdout"], case
    public = json.loads(results["public"]["stdout"])["test_keys"]["requests"]
    assert [r["failure"] for r in public] == [None, None]
    assert public[0]["response"]["x_title"] == SECRET.decode()
