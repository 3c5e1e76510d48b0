"""Detection of shutdowns, blocks and throttling as events (design §5, style rule 10).

Pure: nothing in this package does I/O, reads the clock or logs. ``collector/pipeline.py`` is
the one place where detection meets the store. Modules:

* ``model``: observations, signals and the ``Event`` contract of ``GET /api/v1/events``;
* ``extract``: stored measurement -> observation;
* ``silence``, ``ladder``: shutdowns from heartbeat silence and the connectivity ladder;
* ``collapse``: shutdowns as all-target collapse of a network;
* ``blocking``: per (ASN, target) blocks; ``throttling``: targeted and generalized slowdowns;
* ``baseline``, ``streak``, ``stats``: inpainted baselines, hysteresis, small-count statistics;
* ``detector``: the ``Detector`` base class and the bin and fleet views it is handed;
  ``registry``: ``DETECTORS``, the detectors the engine runs, in order;
* ``tracker``: clustering into events, tiers (with the corroboration hook), in-place updates;
* ``saved``: reading saved state back (named fields, and version 2's positional lists);
* ``windows``: event windows (sensitive dates) that freeze baselines;
* ``monitor``: the monitor's own outages (collector down, control unreachable for everyone);
* ``engine``: the registry run over observations, as one serializable state machine;
* ``params``: the ``detection:`` config section with documented defaults.
"""

from collector.detect.engine import Engine
from collector.detect.model import Event, LadderReading, Run, Signal
from collector.detect.params import DetectionConfig

__all__ = ["DetectionConfig", "Engine", "Event", "LadderReading", "Run", "Signal"]
