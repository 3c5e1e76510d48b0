"""The peak resident set of the calling process, as the benchmarks report it.

Why not ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: Linux keeps the highest resident size
across ``exec``, so a benchmark's child started from a large parent (``subprocess`` forks, then
executes) reports the parent's size when that is the larger. ``VmHWM`` in ``/proc/self/status``
is the peak of the process's own address space, which ``exec`` starts anew. ``ru_maxrss`` is
the fallback where ``/proc`` is not there.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path


def status_mb(field: str, pid: int | str = "self") -> float:
    """A size field of a process's ``/proc/PID/status`` (``VmHWM``, ``VmRSS``) in MiB; NaN
    when the process or the field is not there."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set in MiB, since its last ``exec``."""
    peak = status_mb("VmHWM")
    if math.isnan(peak):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak
