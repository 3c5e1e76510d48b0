"""The hourly outside-in signal the status page charts: means per hour, 7 days kept, saved and
read back, and a damaged document refused with a reason."""

from __future__ import annotations

import json

import pytest

from collector.outside.hourly import HOURS, HourlyShare

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # an hour's start


def test_each_hour_is_the_mean_of_its_rounds_and_old_hours_go() -> None:
    hourly = HourlyShare()
    for minute, share in ((0, 1.0), (20, 0.5), (40, 0.0)):
        hourly.add("KZ", "AS9198", T0 + minute * 60, share)
    hourly.add("KG", "AS8449", T0 + 3600, 0.25)
    rows = hourly.shares(T0 + 3600)
    assert rows[("KZ", "AS9198")][-2:] == [0.5, None]
    assert rows[("KG", "AS8449")][-1] == 0.25
    assert all(len(row) == HOURS for row in rows.values())
    # A week later the first network's hour has gone from the document, not only the chart.
    hourly.add("KG", "AS8449", T0 + HOURS * 3600, 1.0)
    assert set(hourly.series) == {"KG|AS8449"}
    assert len(hourly.series["KG|AS8449"]) == 2


def test_the_document_round_trips_and_bad_ones_are_refused() -> None:
    hourly = HourlyShare()
    hourly.add("KZ", "AS9198", T0, 0.75)
    again = HourlyShare.from_json(hourly.to_json())
    assert again.shares(T0) == hourly.shares(T0)
    assert HourlyShare.from_json(None).series == {}
    good = json.loads(hourly.to_json())
    for bad in ("not json", json.dumps([1]), json.dumps({**good, "version": 9}),
                json.dumps({"version": 1, "series": {"no-bar": {}}}),
                json.dumps({"version": 1, "series": {"KZ|AS1": {"1": [2, 1]}}}),
                json.dumps({"version": 1, "series": {"KZ|AS1": {"x": [0, 1]}}})):
        with pytest.raises(ValueError):
            HourlyShare.from_json(bad)
    with pytest.raises(ValueError, match="share"):
        hourly.add("KZ", "AS9198", T0, 1.5)
