"""Generate the Grafana dashboards in this folder from code, with grafanalib.

Run ``python -m dashboards.build`` after changing this file; a test fails when the JSON files
differ from what this module generates, so nobody edits the JSON by hand. Every query here is
run against a real Prometheus scraping a real collector in ``tests/test_dashboards_live.py``.

Queries use only the collector's metrics as listed in the README: ``kuzot_event_active`` (open
events), ``kuzot_target_verdict`` and ``kuzot_target_measurements_total`` (outcomes per target
and network), ``kuzot_phase_duration_seconds`` (per-phase latency), the probe fleet gauges and
``kuzot_upload_delay_seconds``, and the ingest and notification counters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

HERE = Path(__file__).parent
DATASOURCE = {"type": "prometheus", "uid": "kuzot-prometheus"}
RATE = "$__rate_interval"
WIDTH = 24


def _var(name: str, label: str, query: str, *, multi: bool = True) -> g.Template:
    """A variable filled from Prometheus label values; multi ones offer "All" as ``.*``."""
    template = g.Template(
        name=name, label=label, query=query, dataSource=DATASOURCE, multi=multi,
        includeAll=multi, allValue=".*" if multi else None,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE)
    if multi:
        # Grafana's own spelling of "All selected"; grafanalib has no parameter for it.
        template._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return template


def _targets(*queries: tuple[str, str], instant: bool = False,
             table: bool = False) -> list[g.Target]:
    return [g.Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i),
                     datasource=DATASOURCE, instant=instant,
                     format=g.TABLE_TARGET_FORMAT if table else g.TIME_SERIES_TARGET_FORMAT)
            for i, (expr, legend) in enumerate(queries)]


class Layout:
    """Places panels left to right, wrapping at the dashboard's 24 columns."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0

    def at(self, width: int, height: int) -> g.GridPos:
        if self.x + width > WIDTH:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        pos = g.GridPos(h=height, w=width, x=self.x, y=self.y)
        self.x += width
        self.row_height = max(self.row_height, height)
        return pos


def timeseries(layout: Layout, title: str, description: str, *queries: tuple[str, str],
               unit: str = "", width: int = 12, height: int = 8, stacked: bool = False,
               bars: bool = False, thresholds: list[g.Threshold] | None = None
               ) -> g.TimeSeries:
    return g.TimeSeries(
        title=title, description=description, dataSource=DATASOURCE,
        targets=_targets(*queries), unit=unit, gridPos=layout.at(width, height),
        drawStyle="bars" if bars else "line", fillOpacity=60 if bars else 10,
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        legendDisplayMode="table", legendPlacement="bottom",
        thresholds=thresholds or [], thresholdsStyleMode="line" if thresholds else "off")


def table(layout: Layout, title: str, description: str, *queries: tuple[str, str],
          width: int = 12, height: int = 8, unit: str = "") -> g.Table:
    return g.Table(
        title=title, description=description, dataSource=DATASOURCE,
        targets=_targets(*queries, instant=True, table=True), unit=unit,
        gridPos=layout.at(width, height),
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}])


def stat(layout: Layout, title: str, description: str, *queries: tuple[str, str],
         width: int = 6, height: int = 4, unit: str = "none") -> g.Stat:
    return g.Stat(title=title, description=description, dataSource=DATASOURCE,
                  targets=_targets(*queries, instant=True), format=unit,
                  gridPos=layout.at(width, height), reduceCalc="lastNotNull")


def _dashboard(uid: str, title: str, description: str, panels: list[Any],
               variables: list[g.Template], annotations: list[dict[str, Any]] | None = None
               ) -> g.Dashboard:
    return g.Dashboard(
        uid=uid, title=title, description=description, tags=["kuzot"], timezone="utc",
        panels=panels, templating=g.Templating(list=variables), refresh="1m",
        time=g.Time("now-24h", "now"), editable=False,
        annotations=g.Annotations(list=annotations or []),
    ).auto_panel_ids()


def event_annotation() -> dict[str, Any]:
    """Open events drawn as regions: each kuzot_event_active series spans its event."""
    return {
        "name": "Kuzot events", "enable": True, "iconColor": "red", "datasource": DATASOURCE,
        "expr": 'max by (event_id, kind, tier, cc) (kuzot_event_active{cc=~"$cc"})',
        "step": "60s", "titleFormat": "{{kind}} ({{tier}}) in {{cc}}",
        "textFormat": "event {{event_id}}", "tagKeys": "kind,tier,cc",
        "useValueForTime": False,
    }


def overview() -> g.Dashboard:
    layout = Layout()
    ratio = (f'sum by (cc) (rate(kuzot_target_measurements_total{{verdict="{{v}}",cc=~"$cc"}}'
             f"[{RATE}])) / sum by (cc) (rate(kuzot_target_measurements_total"
             f'{{cc=~"$cc"}}[{RATE}]))')
    panels = [
        stat(layout, "Open shutdowns", "Open shutdown events in the chosen countries.",
             ('count(count by (event_id) (kuzot_event_active{kind="shutdown",cc=~"$cc"})) '
              "or vector(0)", "")),
        stat(layout, "Open blocks", "Open block events.",
             ('count(count by (event_id) (kuzot_event_active{kind="block",cc=~"$cc"})) '
              "or vector(0)", "")),
        stat(layout, "Open throttling", "Open throttling events.",
             ('count(count by (event_id) (kuzot_event_active{kind="throttling",cc=~"$cc"})) '
              "or vector(0)", "")),
        stat(layout, "Networks measured", "Networks with a measurement in the last hour.",
             ('count(count by (cc, asn) (increase(kuzot_target_measurements_total'
              '{cc=~"$cc"}[1h]) > 0))', "")),
        table(layout, "Open events by country and tier",
              "One row per open event and network, as Alertmanager sees them.",
              ('max by (event_id, kind, tier, cc, asn, mechanism) '
               '(kuzot_event_active{cc=~"$cc"})', ""), width=24, height=6),
        timeseries(layout, "Share of measurements reachable, by network",
                   "Verdict ok over all verdicts, per ASN.",
                   (f'sum by (cc, asn) (rate(kuzot_target_measurements_total{{verdict="ok",'
                    f'cc=~"$cc",asn=~"$asn"}}[{RATE}])) / sum by (cc, asn) (rate('
                    f'kuzot_target_measurements_total{{cc=~"$cc",asn=~"$asn"}}[{RATE}]))',
                    "{{cc}} {{asn}}"), unit="percentunit"),
        timeseries(layout, "Blocks up seen from outside, by network (hourly)",
                   "Outside-in probing: share of each network's judged /24 blocks that "
                   "answered the collector's own probes, averaged per hour; beside the probes' "
                   "reachability on the left, it tells a network cut from silent volunteers.",
                   ('avg_over_time(kuzot_outside_blocks_up_ratio{country=~"$cc",'
                    'network!="",network=~"$asn"}[1h])', "{{country}} {{network}}"),
                   unit="percentunit"),
        timeseries(layout, "Share of measurements blocked, by country",
                   "Blocked verdicts over all verdicts.",
                   (ratio.replace("{v}", "blocked"), "{{cc}}"), unit="percentunit"),
        timeseries(layout, "Measurements received, by network",
                   "Stored measurements per second; a drop on one network is worth a look.",
                   (f'sum by (cc, asn) (rate(kuzot_measurements_received_total{{cc=~"$cc",'
                    f'asn=~"$asn"}}[{RATE}]))', "{{cc}} {{asn}}"), unit="reqps"),
        table(layout, "Targets not reachable now",
              "Targets whose latest verdict is blocked or throttled, per network.",
              ('sum by (cc, asn, target, verdict) (kuzot_target_verdict{verdict=~"blocked|'
               'throttled",cc=~"$cc",asn=~"$asn"})', "")),
    ]
    return _dashboard(
        "kuzot-overview", "Kuzot: overview by country and network",
        "Open events, reachability and volume per country and ASN, with events drawn as "
        "annotations.", panels,
        [_var("cc", "Country", "label_values(kuzot_target_measurements_total, cc)"),
         _var("asn", "Network",
              'label_values(kuzot_target_measurements_total{cc=~"$cc"}, asn)')],
        [event_annotation()])


def target() -> g.Dashboard:
    layout = Layout()
    sel = 'target="$target",cc=~"$cc",asn=~"$asn"'
    panels = [
        timeseries(layout, "Median duration per phase and network",
                   "Successful phases only: resolve, connect, tls, processing (to first byte),"
                   " transfer.",
                   (f"histogram_quantile(0.5, sum by (le, asn, phase) (rate("
                    f"kuzot_phase_duration_seconds_bucket{{{sel}}}[{RATE}])))",
                    "{{asn}} {{phase}}"), unit="s", width=24),
        timeseries(layout, "TLS handshake p90 by network",
                   "Slow handshakes on one network only point at SNI-based throttling.",
                   (f"histogram_quantile(0.9, sum by (le, asn) (rate("
                    f'kuzot_phase_duration_seconds_bucket{{{sel},phase="tls"}}[{RATE}])))',
                    "{{asn}}"), unit="s"),
        timeseries(layout, "Failures by layer and mechanism",
                   "Blocked verdicts per network, by the layer that failed (dns, tcp, tls, "
                   "http) and the mechanism.",
                   (f"sum by (asn, layer, mechanism) (increase(kuzot_target_measurements_total"
                    f'{{{sel},verdict="blocked"}}[{RATE}]))', "{{asn}} {{layer}} {{mechanism}}"),
                   bars=True, stacked=True),
        timeseries(layout, "Verdicts by network",
                   "Share of each verdict per network.",
                   (f"sum by (asn, verdict) (rate(kuzot_target_measurements_total{{{sel}}}"
                    f"[{RATE}])) / ignoring (verdict) group_left sum by (asn) (rate("
                    f"kuzot_target_measurements_total{{{sel}}}[{RATE}]))",
                    "{{asn}} {{verdict}}"), unit="percentunit", stacked=True),
        table(layout, "Latest verdict per network",
              "The newest measurement's verdict from each network.",
              (f"max by (cc, asn, test_name, verdict) (kuzot_target_verdict{{{sel}}})", "")),
    ]
    return _dashboard(
        "kuzot-target", "Kuzot: one target across networks",
        "Per-phase latency and failures by layer for one target, side by side per ASN.",
        panels,
        [_var("target", "Target", "label_values(kuzot_target_measurements_total, target)",
              multi=False),
         _var("cc", "Country",
              'label_values(kuzot_target_measurements_total{target="$target"}, cc)'),
         _var("asn", "Network",
              'label_values(kuzot_target_measurements_total{target="$target",cc=~"$cc"}, '
              "asn)")],
        [event_annotation()])


def _median(selector: str, by: str) -> str:
    return (f"histogram_quantile(0.5, sum by (le, {by}) (rate("
            f"kuzot_phase_duration_seconds_bucket{{{selector}}}[{RATE}])))")


def throttling() -> g.Dashboard:
    layout = Layout()
    extreme = [g.Threshold("green", 0, 0.0), g.Threshold("red", 1, 10.0)]
    panels = []
    for phase, words in (("tls", "TLS handshake"), ("processing", "time to first byte"),
                         ("transfer", "transfer time")):
        panels.append(timeseries(
            layout, f"{words.capitalize()}: target / baseline",
            f"Median {words} of the target over that of its co-hosted baseline on the same "
            "network. 1 is parity; 10 and above is extreme throttling (OONI).",
            (_median(f'target="$target",phase="{phase}",asn=~"$asn"', "asn") + " / "
             + _median(f'target="$baseline",phase="{phase}",asn=~"$asn"', "asn"),
             "{{asn}}"), thresholds=extreme, width=8))
    panels += [
        timeseries(layout, "Transfer time against the network's median",
                   "Each target's median transfer time over the median of all targets on "
                   "the same network: targeted throttling stands out, a general slowdown "
                   "does not.",
                   (_median('phase="transfer",cc=~"$cc",asn=~"$asn"', "asn, target")
                    + " / on (asn) group_left "
                    + _median('phase="transfer",cc=~"$cc",asn=~"$asn"', "asn"),
                    "{{asn}} {{target}}"), thresholds=extreme, width=24),
        timeseries(layout, "Share of measurements judged throttled",
                   "Throttled verdicts over all verdicts, per network.",
                   (f'sum by (cc, asn) (rate(kuzot_target_measurements_total{{verdict='
                    f'"throttled",cc=~"$cc",asn=~"$asn"}}[{RATE}])) / sum by (cc, asn) (rate('
                    f'kuzot_target_measurements_total{{cc=~"$cc",asn=~"$asn"}}[{RATE}]))',
                    "{{cc}} {{asn}}"), unit="percentunit"),
        table(layout, "Open throttling events",
              "Throttling events open now, per network and tier.",
              ('max by (event_id, tier, cc, asn, mechanism) '
               '(kuzot_event_active{kind="throttling",cc=~"$cc"})', "")),
    ]
    return _dashboard(
        "kuzot-throttling", "Kuzot: throttling ratios",
        "Target against co-hosted baseline per phase, and against the network's median.",
        panels,
        [_var("cc", "Country", "label_values(kuzot_phase_duration_seconds_bucket, cc)"),
         _var("asn", "Network",
              'label_values(kuzot_phase_duration_seconds_bucket{cc=~"$cc"}, asn)'),
         _var("target", "Target", "label_values(kuzot_phase_duration_seconds_bucket, target)",
              multi=False),
         _var("baseline", "Baseline",
              "label_values(kuzot_phase_duration_seconds_bucket, target)", multi=False)],
        [event_annotation()])


def fleet() -> g.Dashboard:
    layout = Layout()
    panels = [
        stat(layout, "Probes heard in 15 min", "Probes whose last heartbeat is recent.",
             ("count(time() - kuzot_probe_last_heartbeat_timestamp_seconds < 900) "
              "or vector(0)", "")),
        stat(layout, "Measurements waiting on probes", "Sum of the probes' upload queues.",
             ("sum(kuzot_probe_queue_depth)", "")),
        stat(layout, "Collector up", "Whether Prometheus can scrape the collector.",
             ('min(up{job="kuzot-collector"})', "")),
        stat(layout, "Store write p95", "95th percentile time to write a batch durably.",
             (f"histogram_quantile(0.95, sum by (le) (rate("
              f"kuzot_store_write_duration_seconds_bucket[{RATE}])))", ""), unit="s"),
        table(layout, "Seconds since each probe's last heartbeat and measurement",
              "A probe silent for long is offline; many on one network is a shutdown signal.",
              ("time() - kuzot_probe_last_heartbeat_timestamp_seconds", "heartbeat"),
              ("time() - max by (probe_id) (kuzot_probe_last_measurement_timestamp_seconds)",
               "measurement"), unit="s"),
        timeseries(layout, "Upload queue per probe",
                   "Measurements held on each probe (from heartbeats): the upload backlog.",
                   ("kuzot_probe_queue_depth", "{{probe_id}}")),
        timeseries(layout, "Upload delay by country",
                   "Time from measurement to arrival; long tails are uploads held back by a "
                   "shutdown.",
                   (f"histogram_quantile(0.5, sum by (le, cc) (rate("
                    f"kuzot_upload_delay_seconds_bucket[{RATE}])))", "p50 {{cc}}"),
                   (f"histogram_quantile(0.95, sum by (le, cc) (rate("
                    f"kuzot_upload_delay_seconds_bucket[{RATE}])))", "p95 {{cc}}"), unit="s"),
        timeseries(layout, "Ingest requests by outcome", "ok, invalid, rate_limited.",
                   (f"sum by (outcome) (rate(kuzot_ingest_requests_total[{RATE}]))",
                    "{{outcome}}"), unit="reqps"),
        timeseries(layout, "Rejected measurements by reason",
                   "The key that failed validation.",
                   (f"sum by (reason) (increase(kuzot_measurements_rejected_total[{RATE}]))",
                    "{{reason}}"), bars=True),
        timeseries(layout, "Notifications sent and dropped",
                   "Messages delivered per destination and change, and those given up.",
                   (f"sum by (destination, change) (increase(kuzot_notifications_sent_total"
                    f"[{RATE}]))", "{{destination}} {{change}}"),
                   (f"sum by (destination) (increase(kuzot_notifications_dropped_total"
                    f"[{RATE}]))", "{{destination}} dropped"), bars=True),
    ]
    return _dashboard(
        "kuzot-fleet", "Kuzot: probe fleet health and upload backlog",
        "Heartbeats, upload queues and delays, ingest and notification health.", panels, [])


DASHBOARDS = {"overview": overview, "target": target, "throttling": throttling,
              "fleet": fleet}


def render(name: str) -> str:
    """The JSON text of one dashboard, stable across runs (sorted keys, final newline)."""
    data = json.loads(json.dumps(DASHBOARDS[name]().to_json_data(), cls=DashboardEncoder))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    out = Path(argv[0]) if argv else HERE
    for name in DASHBOARDS:
        (out / f"{name}.json").write_text(render(name), encoding="utf-8")
        print(f"wrote {out / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
