"""The monitoring configs as the real tools read them: promtool, amtool, and the dashboards'
generator. Each check would fail on a broken rule, route, test or hand-edited dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dashboards import build
from tests.helpers.monitoring import binary, run_tool

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def test_promtool_accepts_the_prometheus_config() -> None:
    result = run_tool(binary("promtool"), "check", "config", str(CONFIGS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = run_tool(binary("promtool"), "check", "rules", str(CONFIGS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout


def test_every_alert_has_summary_description_link_and_a_unit_test() -> None:
    rules = yaml.safe_load((CONFIGS / "alerts.yml").read_text())
    tests = (ROOT / "tests" / "promtool" / "alerts_test.yml").read_text()
    alerts = [r for group in rules["groups"] for r in group["rules"] if "alert" in r]
    assert len(alerts) == 11
    for rule in alerts:
        assert {"summary", "description", "link"} <= set(rule["annotations"]), rule["alert"]
        assert f"alertname: {rule['alert']}\n" in tests, f"no unit test for {rule['alert']}"


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    test_file = ROOT / "tests" / "promtool" / "alerts_test.yml"
    result = run_tool(binary("promtool"), "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_wrong_rule(tmp_path: Path) -> None:
    # The unit tests are only worth something if a changed rule fails them.
    broken = (CONFIGS / "alerts.yml").read_text().replace("for: 15m", "for: 1m")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "alerts.yml").write_text(broken)
    (tmp_path / "tests" / "promtool").mkdir(parents=True)
    test_file = tmp_path / "tests" / "promtool" / "alerts_test.yml"
    test_file.write_text((ROOT / "tests" / "promtool" / "alerts_test.yml").read_text())
    result = run_tool(binary("promtool"), "test", "rules", str(test_file))
    assert result.returncode != 0
    assert "KuzotTargetBlocked" in result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    result = run_tool(binary("amtool"), "check-config", str(CONFIGS / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "3 receivers" in result.stdout


def test_amtool_routes_tiers_to_the_right_receivers() -> None:
    amtool = binary("amtool")
    config = f"--config.file={CONFIGS / 'alertmanager.yml'}"

    def receivers(*labels: str) -> str:
        result = run_tool(amtool, "config", "routes", "test", config, *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip()

    assert receivers("event_id=e1", "tier=suspected") == "researchers"
    assert receivers("event_id=e1", "tier=likely") == "media-partners,researchers"
    assert receivers("event_id=e1", "tier=confirmed") == "media-partners,researchers"
    assert receivers("alertname=KuzotTargetBlocked", "level=target") == "researchers"
    assert receivers("alertname=KuzotProbeSilent", "audience=operators") == "operators"


def test_dashboards_are_what_the_generator_makes() -> None:
    for name in build.DASHBOARDS:
        committed = (ROOT / "dashboards" / f"{name}.json").read_text()
        assert committed == build.render(name), (
            f"dashboards/{name}.json differs from the generator: run python -m dashboards.build")


def test_dashboards_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (CONFIGS / "grafana" / "provisioning" / "datasources" / "kuzot.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    providers = yaml.safe_load(
        (CONFIGS / "grafana" / "provisioning" / "dashboards" / "kuzot.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    uids = set()
    for name in build.DASHBOARDS:
        dashboard = json.loads((ROOT / "dashboards" / f"{name}.json").read_text())
        uids.add(dashboard["uid"])
        assert dashboard["panels"], name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, (name, panel["title"])
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
    assert len(uids) == len(build.DASHBOARDS)


def test_the_outside_in_signal_sits_beside_the_probes_per_network() -> None:
    panels = {p["title"]: p for p in json.loads(
        (ROOT / "dashboards" / "overview.json").read_text())["panels"]}
    probes = panels["Share of measurements reachable, by network"]
    outside = panels["Blocks up seen from outside, by network (hourly)"]
    assert probes["gridPos"]["y"] == outside["gridPos"]["y"]  # one row, side by side
    assert probes["gridPos"]["x"] + probes["gridPos"]["w"] == outside["gridPos"]["x"]
    [target] = outside["targets"]
    # Per network, and the dashboard's network choice applies to both panels.
    assert '"$asn"' in target["expr"] and "{{network}}" in target["legendFormat"]
