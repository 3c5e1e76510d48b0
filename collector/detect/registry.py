"""The detectors the engine runs, in the order it runs them: adding a detector is one line here.

Order is precedence within a settled bin: collapse first (a network whose probes collapsed is
a shutdown, not sixty blocks: the later detectors skip it), the generalized slowdown before
targeted throttling (a network slow as a whole is not throttling one target), then the
per-target detectors; time detectors (heartbeat silence) run after every bin is settled.
"""

from __future__ import annotations

from collector.detect.blocking import BlockDetector
from collector.detect.collapse import CollapseDetector
from collector.detect.detector import Detector
from collector.detect.monitor_reach import MonitorReachDetector
from collector.detect.outside_in import OutsideDetector
from collector.detect.silence import SilenceDetector
from collector.detect.throttling import SlowdownDetector, ThrottleDetector

DETECTORS: tuple[type[Detector], ...] = (
    CollapseDetector,
    SlowdownDetector,
    BlockDetector,
    ThrottleDetector,
    SilenceDetector,
    OutsideDetector,
    MonitorReachDetector,
)
