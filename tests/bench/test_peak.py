"""The benchmarks' peak RSS of a child is the child's own, not the parent's it was forked from."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from bench.peak import peak_rss_mb
print(json.dumps({"peak": peak_rss_mb(),
                  "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_a_child_of_a_large_parent_reports_its_own_peak() -> None:
    # The parent holds 300 MiB, touched page by page so that it is resident when the child
    # is forked; the kernel's ru_maxrss of the child then says 300 MiB or more.
    ballast = bytearray(300 * 1024 * 1024)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 >= 300
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], check=True,
                         capture_output=True, text=True).stdout
    child = json.loads(out)
    del ballast
    assert child["ru_maxrss"] >= 300  # what the benchmarks reported before
    assert 1 < child["peak"] < 100  # an interpreter and one import
