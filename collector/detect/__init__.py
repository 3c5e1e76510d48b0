"""Detection of shutdowns, blocks and throttling as events (design §5, style rule 10).

Pure: nothing in this package does I/O, reads the clock or logs. ``collector/pipeline.py`` is
the one place where detection meets the store. Modules:

* ``model``: observations, signals and the ``Event`` contract of ``GET /api/v1/events``;
* ``extract``: stored measurement -> observation;
* ``silence``, ``ladder``: shutdowns from heartbeat silence and the connectivity ladder;
* ``collapse``: shutdowns as all-target collapse of a network;
* ``blocking``: per (ASN, target) blocks; ``throttling``: targeted and generalized slowdowns;
* ``baseline``, ``streak``, ``stats``: inpainted baselines, hysteresis, small-count statistics;
* ``tracker``: clustering into events, tiers, in-place updates;
* ``windows``: event windows (sensitive dates) that freeze baselines;
* ``monitor``: the monitor's own outages (collector down, control unreachable for everyone);
* ``engine``: all of the above as one serializable state machine;
* ``params``: the ``detection:`` config section with documented defaults.
"""

from collector.detect.engine import Engine
from collector.detect.model import Event, LadderReading, Run, Signal
from collector.detect.params import DetectionConfig

__all__ = ["DetectionConfig", "Engine", "Event", "LadderReading", "Run", "Signal"]
