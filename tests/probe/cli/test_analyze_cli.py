"""``python -m probe analyze``, run as a subprocess on OONI's measurements and on the probe's.

OONI's 56 QA measurements (one file each, as OONI's API serves them) and the same measurements
one per line in a gzip file (as OONI's S3 dumps are); the probe's own measurements of the
loopback network, in today's format and in the format Kuzot wrote before; and input that is
broken in every way a file can be, which must give one error line each and no traceback.
"""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trustme

from probe.core import wire
from probe.nettests.web_connectivity import analysis
from tests.helpers import ooni_format
from tests.helpers.paths import REPO
from tests.probe.core.test_ooni_loader import (
    dns_nxdomain,
    http_diff,
    injected_dns,
    measurement,
    ok_https,
    redirect,
    tls_reset,
)
from tests.probe.nettests.web_connectivity.test_web_loopback import Network, network  # noqa: F401 (fixture by name)

VERDICTS = {"ok", "down", "blocked", "throttled", "inconclusive"}


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", "analyze", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def cell(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def test_the_table_has_a_row_for_each_of_oonis_56_measurements() -> None:
    files = [str(p.relative_to(REPO)) for p in ooni_format.corpus_files()]
    result = analyze(*files)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "56 analysed, 0 not"
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["source", "input", "ooni_blocking", "ooni_accessible",
                              "verdict", "layer", "mechanism", "confidence"]
    assert len(rows) == 56
    by_source = {row.split()[0]: row.split() for row in rows}
    for name in files:
        recorded = ooni_format.read(REPO / name)
        source, url, blocking, accessible, verdict, _layer, _mechanism, confidence = \
            by_source[name]
        assert url == recorded["input"]
        assert (blocking, accessible) == (cell(recorded["test_keys"]["blocking"]),
                                          cell(recorded["test_keys"]["accessible"]))
        assert verdict in VERDICTS and 0.0 <= float(confidence) <= 1.0


def test_json_lines_carry_the_recorded_keys_and_an_analysis_of_them_alone(
    tmp_path: Path,
) -> None:
    """Each line is exactly ``probe.nettests.web_connectivity.analysis.analyze`` of the keys OONI
    recorded: the command adds nothing to them. The same measurements one per line in gzip read the
    same."""
    files = ooni_format.corpus_files()
    result = analyze("--json", *[str(p) for p in files])
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines] == [str(p) for p in files]
    for path, line in zip(files, lines, strict=True):
        recorded = ooni_format.read(path)
        keys = recorded["test_keys"]
        assert line["input"] == recorded["input"]
        assert line["recorded"] == {"blocking": keys["blocking"],
                                    "accessible": keys["accessible"]}
        expected = analysis.analyze(copy.deepcopy(keys), recorded["input"],
                                    recorded.get("probe_cc"))
        assert line["analysis"] == expected["analysis"]
        assert line["ooni"] == {k: v for k, v in expected.items() if k != "analysis"}
        assert line["analysis"]["verdict"] in VERDICTS

    dump = tmp_path / "2024-01-01_KG_webconnectivity.jsonl.gz"
    with gzip.open(dump, "wt", encoding="utf-8") as out:
        for path in files:
            out.write(json.dumps(ooni_format.read(path), ensure_ascii=False) + "\n")
    again = analyze("--json", str(dump))
    assert again.returncode == 0, again.stderr
    relined = [json.loads(line) for line in again.stdout.splitlines()]
    assert [line["source"] for line in relined] == [f"{dump}:{n}" for n in range(1, 57)]
    assert [r["analysis"] for r in relined] == [r["analysis"] for r in lines]


def test_bad_lines_get_one_error_each_and_the_rest_is_analysed(tmp_path: Path) -> None:
    good = json.dumps(ooni_format.read(ooni_format.corpus_files()[0]))
    lines = [
        good,
        "this is not JSON",
        json.dumps({"test_name": "dnscheck", "input": "dns.google", "test_keys": {}}),
        json.dumps({"test_name": "web_connectivity", "input": "http://example.org/"}),
        json.dumps({"test_name": "web_connectivity", "input": "ftp://example.org/",
                    "test_keys": {}}),
        json.dumps({"test_name": "web_connectivity", "input": "http://example.org/",
                    "test_keys": {"queries": "not a list", "control": 7}}),
        json.dumps([1, 2]),
        "",
        good,
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = analyze(str(path), str(tmp_path / "absent.json"))
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors[-1] == "2 analysed, 7 not"
    expected = {
        f"{path}:2": "not JSON",
        f"{path}:3": "not web_connectivity (test_name='dnscheck')",
        f"{path}:4": "missing key: test_keys",
        f"{path}:5": "input is not an http(s) URL",
        f"{path}:6": "test_keys of an unexpected shape",
        f"{path}:7": "not a measurement (a JSON list)",
        str(tmp_path / "absent.json"): "cannot open",
    }
    assert len(errors) - 1 == len(expected)
    for line, (source, reason) in zip(errors, expected.items(), strict=False):
        assert line.startswith(f"{source}: error: {reason}"), line
    rows = result.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [f"{path}:1", f"{path}:9"]


def test_nothing_readable_exits_nonzero_without_a_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00\xff not json at all\n{also not\n")
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(b'{"test_name": "web_connectivity"}\n' * 50)[:40])
    result = analyze(str(garbage), str(truncated))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("0 analysed")


async def test_the_probes_measurements_old_and_new_are_analysed_as_recorded(
    network: Network, ca: trustme.CA, tmp_path: Path  # noqa: F811 (the fixture)
) -> None:
    """Measurements the probe made of the loopback network read back with the verdict the
    probe recorded; so do the same measurements in Kuzot's older key names."""
    made = []
    for case in (ok_https, dns_nxdomain, injected_dns, tls_reset, http_diff, redirect):
        network.isp.clear()
        url, keys = await case(network, ca)
        made.append(measurement(url, keys))
    old = [ooni_format.older_format(m) for m in made]
    assert all(wire.upgrade(o)["test_keys"]["queries"] == m["test_keys"]["queries"]
               for o, m in zip(old, made, strict=True))
    current, older = tmp_path / "kuzot.jsonl", tmp_path / "kuzot-old.jsonl"
    current.write_text("".join(json.dumps(m) + "\n" for m in made), encoding="utf-8")
    older.write_text("".join(json.dumps(m) + "\n" for m in old), encoding="utf-8")
    result = analyze("--json", str(current), str(older))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 * len(made)
    for line, m in zip(lines, made + made, strict=True):
        recorded = m["test_keys"]
        assert line["software_name"] == "kuzot" and line["input"] == m["input"]
        assert line["recorded"]["blocking"] == recorded["blocking"]
        got = line["analysis"]
        assert (got["verdict"], got["layer"], got["mechanism"]) == (
            recorded["analysis"]["verdict"], recorded["analysis"]["layer"],
            recorded["analysis"]["mechanism"]), line["source"]
    verdicts = {line["analysis"]["verdict"] for line in lines}
    assert {"ok", "blocked"} <= verdicts
    table = analyze(str(current))
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 1 + len(made)
