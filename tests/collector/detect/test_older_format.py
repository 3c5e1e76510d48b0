"""Collector readers of stored measurements read Kuzot's older key names as well as today's.

Kuzot's measurements used other key names before they took OONI's extension prefix ``x_`` and
an integer ``rcode`` (``probe.core.wire``); collectors keep those measurements. Detection
(``detect.extract``) and the fleet metrics read only keys that kept their names (OONI's ``t0``/
``t``, ``failure``, ``status.success``, ``server_name``, ``engine``, Kuzot's ``x_ttfb`` and
``analysis``), so a measurement in either format gives them the same facts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.detect.extract import observation
from collector.metrics.fleet import phase_durations
from probe.core.measurement import envelope
from probe.nettests.web_connectivity import analysis
from tests.helpers import observations as obs
from tests.helpers import ooni_format

URL = "https://www.example.com/"


def current() -> dict[str, Any]:
    m = obs.Measurement(URL)
    m.lookup("www.example.com", ["93.184.216.34"])
    m.lookup("www.example.com", ["93.184.216.34"], engine="udp", qtype="A")
    m.flow("93.184.216.34", 443, tls="connection_reset")
    m.control = obs.control(["93.184.216.34"], tcp={"93.184.216.34:443": None},
                            tls={"93.184.216.34:443": (None, "DigiCert Global G2")},
                            sni="www.example.com")
    keys = m.keys()
    keys.update(analysis.analyze(keys, URL, "KG"))
    return envelope(test_name="web_connectivity", input_=URL, test_keys=keys,
                    started=datetime(2026, 12, 1, tzinfo=UTC), runtime=1.0, cc="KG",
                    asn="AS8449")


def test_detection_and_metrics_read_old_and_new_alike() -> None:
    new = current()
    old = ooni_format.older_format(new)
    assert old != new
    assert old["test_keys"]["queries"][1]["rcode"] == "NOERROR"
    assert observation(old, "p1") == observation(new, "p1")
    assert observation(new, "p1") is not None
    assert phase_durations(old["test_keys"]) == phase_durations(new["test_keys"])
    assert [phase for phase, _ in phase_durations(new["test_keys"])] == [
        "resolve", "connect"]
