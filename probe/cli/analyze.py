"""``python -m probe analyze FILE...``: Kuzot's rules re-run on recorded measurements.

Reads web_connectivity measurements, OONI's or Kuzot's, as they are published: one JSON
document per file (OONI's API, ``probe check --json``), one per line (OONI's S3 dumps, the
collector's exports), either of them gzip-compressed, a JSON list, or the collector's
``{"measurements": [...]}``. Each measurement is analysed again by
``probe.nettests.web_connectivity.analysis.analyze`` (which computes OONI's keys with
``probe.nettests.web_connectivity.ooni_classic`` beside Kuzot's ``analysis``) from what the file
records and nothing else: no key is derived or added before the analysis, so an OONI measurement is
judged from OONI's own fields. Kuzot measurements written with older key names are renamed first
(``probe.core.wire.upgrade``).

Output: a table (source, input, the blocking/accessible the file recorded, Kuzot's verdict,
layer, mechanism, confidence), or with ``--json`` one JSON object per line. A line or file that
cannot be read or is not a usable web_connectivity measurement gets one error line on stderr
naming it, and the rest goes on; the exit status is 2 only when nothing at all was analysed.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from probe.core import wire
from probe.nettests.web_connectivity import analysis

NOTHING_READ = 2
# A whole-file document (not one per line) is read into memory to be parsed: this bounds it.
MAX_DOCUMENT = 256 * 1024 * 1024
REQUIRED = ("input", "test_keys")


class Unusable(ValueError):
    """A measurement that cannot be analysed; the message says why."""


@dataclass(frozen=True, slots=True)
class Item:
    source: str  # "file", "file:line" or "file[index]"
    value: Any = None
    error: str | None = None


def _open(path: str) -> IO[bytes]:
    raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    if head == b"\x1f\x8b" or path.endswith(".gz"):
        return gzip.open(raw)  # type: ignore[return-value]
    return raw


def _expand(source: str, value: Any) -> Iterator[Item]:
    """A parsed document: one measurement, a list of them, or ``{"measurements": [...]}``."""
    if isinstance(value, dict) and isinstance(value.get("measurements"), list):
        value = value["measurements"]
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield Item(f"{source}[{index}]", item)
        return
    yield Item(source, value)


def read_items(path: str) -> Iterator[Item]:
    """Every measurement of ``path`` (or an error item saying why there is none)."""
    name = "<stdin>" if path == "-" else path
    try:
        handle = _open(path)
    except OSError as exc:
        yield Item(name, error=f"cannot open: {exc.strerror or exc}")
        return
    with handle:
        try:
            lines = iter(handle)
            first = next(lines, b"")
            try:
                value = json.loads(first)
            except ValueError:
                value = None
            if value is not None or not first.strip():
                # One document per line (the first line is a whole document); a file of one
                # line is named like a file of one document.
                later = ((n, line) for n, line in enumerate(lines, start=2) if line.strip())
                second = next(later, None)
                if first.strip():
                    yield from _expand(name if second is None else f"{name}:1", value)
                if second is not None:
                    yield _line_item(f"{name}:{second[0]}", second[1])
                for number, line in later:
                    yield _line_item(f"{name}:{number}", line)
                return
            rest = handle.read(MAX_DOCUMENT + 1 - len(first))
            text = first + rest
            if len(text) > MAX_DOCUMENT:
                yield Item(name, error=f"a single JSON document larger than {MAX_DOCUMENT} "
                                       "bytes (split it, one measurement per line)")
                return
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if document is not None:
                yield from _expand(name, document)
                return
            # Not one document: lines, each judged on its own.
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield _line_item(f"{name}:{number}", line)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield Item(name, error=f"cannot read: {exc}")


def _line_item(source: str, line: bytes) -> Item:
    try:
        return Item(source, json.loads(line))
    except UnicodeDecodeError as exc:
        return Item(source, error=f"not UTF-8: {exc.reason}")
    except ValueError as exc:
        return Item(source, error=f"not JSON: {exc}")


def _check(value: Any) -> dict[str, Any]:
    """The measurement if it is a web_connectivity measurement with a URL; Unusable if not."""
    if not isinstance(value, dict):
        raise Unusable(f"not a measurement (a JSON {type(value).__name__})")
    test_name = value.get("test_name")
    if test_name != "web_connectivity":
        raise Unusable(f"not web_connectivity (test_name={test_name!r})")
    missing = [k for k in REQUIRED if value.get(k) is None]
    if missing:
        raise Unusable(f"missing key: {', '.join(missing)}")
    url = value["input"]
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or \
            not urlsplit(url).hostname:
        raise Unusable(f"input is not an http(s) URL: {str(url)[:80]!r}")
    if not isinstance(value["test_keys"], dict):
        raise Unusable("test_keys is not an object")
    return value


def analyse(value: Any) -> dict[str, Any]:
    """One result row: the input, what the measurement recorded, and the new analysis.

    Raises Unusable when the value is not a usable web_connectivity measurement (including
    test keys of the wrong shape, which the analysis cannot read)."""
    measurement = wire.upgrade(_check(value))
    keys = measurement["test_keys"]
    cc = measurement.get("probe_cc")
    cc = cc if isinstance(cc, str) and cc != "ZZ" else None
    try:
        result = analysis.analyze(keys, measurement["input"], cc)
    except Exception as exc:  # recorded by someone else: any shape may arrive
        raise Unusable(f"test_keys of an unexpected shape ({type(exc).__name__}: "
                       f"{str(exc)[:120]})") from exc
    ooni = {k: v for k, v in result.items() if k != "analysis"}
    return {
        "input": measurement["input"],
        "measurement_uid": measurement.get("measurement_uid"),
        "software_name": measurement.get("software_name"),
        "probe_cc": measurement.get("probe_cc"),
        "probe_asn": measurement.get("probe_asn"),
        "measurement_start_time": measurement.get("measurement_start_time"),
        "recorded": {"blocking": keys.get("blocking"), "accessible": keys.get("accessible")},
        "ooni": ooni,
        "analysis": result["analysis"],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


HEADER = ("source", "input", "ooni_blocking", "ooni_accessible", "verdict", "layer",
          "mechanism", "confidence")


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Aligned columns; ``ooni_*`` are the values the measurement recorded."""
    lines = [HEADER]
    for source, row in rows:
        result = row["analysis"]
        lines.append((source, row["input"], _cell(row["recorded"]["blocking"]),
                      _cell(row["recorded"]["accessible"]), _cell(result["verdict"]),
                      _cell(result["layer"]), _cell(result["mechanism"]),
                      f"{result['confidence']:.2f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def run(paths: list[str], as_json: bool, out: IO[str], err: IO[str]) -> int:
    """Analyse every measurement of ``paths``; returns the exit status."""
    rows: list[tuple[str, dict[str, Any]]] = []
    failed = 0
    for path in paths:
        for item in read_items(path):
            error = item.error
            if error is None:
                try:
                    row = analyse(item.value)
                except Unusable as exc:
                    error = str(exc)
                else:
                    rows.append((item.source, row))
                    if as_json:
                        out.write(json.dumps({"source": item.source, **row},
                                             ensure_ascii=False) + "\n")
            if error is not None:
                failed += 1
                err.write(f"{item.source}: error: {error}\n")
    if not as_json and rows:
        out.write(table(rows) + "\n")
    err.write(f"{len(rows)} analysed, {failed} not\n")
    return 0 if rows else NOTHING_READ


def add_parser(sub: Any) -> None:
    """Register the ``analyze`` subcommand on the probe's subparsers."""
    analyze = sub.add_parser(
        "analyze", help="re-analyse recorded web connectivity measurements (OONI's or ours)")
    analyze.add_argument("files", nargs="+", metavar="FILE",
                         help="a measurement per file or per line, gzip allowed; - for stdin")
    analyze.add_argument("--json", action="store_true", help="one JSON object per line")


def main(args: argparse.Namespace) -> int:
    """Run ``analyze`` on parsed arguments; the exit status."""
    return run(args.files, args.json, sys.stdout, sys.stderr)
