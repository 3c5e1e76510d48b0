"""Regenerate the shipped target lists from a Citizen Lab test-lists checkout.

    python -m probe.config.targets_import --test-lists PATH [--out configs/targets] [--interval 24h]

The shipped ``kg.csv``, ``kz.csv`` and ``global.csv`` are the project's curated additions
(``curated/*.csv``: platform endpoints, co-hosted baselines, domestic canaries, each block with
its ``# source:``) followed by Citizen Lab's ``lists/kg.csv``, ``lists/kz.csv`` and
``lists/global.csv``, the lists OONI Probe measures. Each imported entry keeps Citizen Lab's
category code, ``date_added``, source and notes, and gets the ``interval`` given here: a list
of hundreds of URLs measured at the probe's default cadence would spend a volunteer's data
budget by mid-morning. Citizen Lab's category legend is copied beside the lists, so tests can
check every shipped category against it without a checkout.

A Citizen Lab entry whose URL is a curated one (scheme, case of the host and a trailing slash
aside) is not imported twice: the curated entry stays and its notes say where Citizen Lab
lists it. Everything is checked before anything is written: an unknown category code, a bad
URL or date stops the run with the file and line, and leaves the old lists in place.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from probe.core import citizenlab
from probe.core.targets import CSV_COLUMNS, Target
from probe.core.typed_config import ConfigError, build, parse_duration

LISTS = {"kg": "KG", "kz": "KZ", "global": "*"}
"""Shipped list -> country scope; each is built from Citizen Lab's ``lists/<name>.csv``."""
LEGEND = "00-LEGEND-new_category_codes.csv"
LEGEND_COPY = "citizenlab-category-codes.csv"
REPOSITORY = "https://github.com/citizenlab/test-lists"
LICENCE = "CC BY-NC-SA 4.0"
CURATED_SOURCE = "kuzot curated"
DEFAULT_OUT = Path(__file__).resolve().parent.parent.parent / "configs" / "targets"


class ListImportError(ValueError):
    """The checkout or a curated list cannot be imported; the message says where."""


@dataclass(frozen=True, slots=True)
class Legend:
    """Citizen Lab's category codes, and the old codes each one replaces."""

    codes: frozenset[str]
    replaced: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Legend:
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [c.strip() for c in rows[0][:2]] != ["Category Description", "New Code"]:
            raise ListImportError(f"{LEGEND}: not Citizen Lab's category legend")
        codes = {row[1].strip() for row in rows[1:] if len(row) > 1 and row[1].strip()}
        replaced = {old: row[1].strip() for row in rows[1:] if len(row) > 2
                    for old in row[2].split() if old not in codes and old != "N/A"}
        return cls(frozenset(codes), replaced)

    def code(self, value: str) -> str | None:
        """The current code for ``value`` (itself, or the code that replaced it)."""
        return value if value in self.codes else self.replaced.get(value)


def same_site_key(url: str) -> str:
    """``url`` without its scheme, with its host in lower case and no trailing slash."""
    parts = urlsplit(url)
    rest = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return parts.netloc.lower() + rest


def _row(values: dict[str, str]) -> list[str]:
    return [values.get(column, "") for column in CSV_COLUMNS]


def _check(data: dict[str, str], where: str, legend: Legend) -> None:
    try:
        build(Target, data, where)
    except ConfigError as exc:
        raise ListImportError(str(exc)) from exc
    if data.get("category") not in legend.codes:
        raise ListImportError(f"{where}.category: {data.get('category')!r} is not a Citizen Lab "
                           "category code")


def read_curated(path: Path, legend: Legend) -> list[str | dict[str, str]]:
    """The curated list as comment lines (kept verbatim) and entries (checked)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[0]])) if lines else []
    if header != list(CSV_COLUMNS):
        raise ListImportError(f"{path.name}: header must be {','.join(CSV_COLUMNS)}")
    items: list[str | dict[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("#") or not line.strip():
            items.append(line)
            continue
        values = next(csv.reader([line]))
        if len(values) != len(CSV_COLUMNS):
            raise ListImportError(f"{path.name} line {number}: {len(values)} columns, "
                               f"not {len(CSV_COLUMNS)}")
        data = {k: v for k, v in zip(CSV_COLUMNS, values, strict=True) if v}
        _check(data, f"{path.name} line {number}", legend)
        if not data.get("source") or not data.get("date_added"):
            raise ListImportError(f"{path.name} line {number}: a curated entry needs its "
                               "date_added and source")
        items.append(data)
    return items


def read_citizenlab(path: Path, cc: str, legend: Legend, interval: str) -> list[dict[str, str]]:
    """Citizen Lab's list as project entries: category, date, source and notes kept, the
    source prefixed with the repository, ``interval`` set."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    if not citizenlab.is_citizenlab(reader.fieldnames):
        raise ListImportError(f"lists/{path.name}: header is not {','.join(citizenlab.COLUMNS)}")
    entries = []
    for number, row in enumerate(reader, start=2):
        where = f"lists/{path.name} line {number}"
        data = citizenlab.target_fields(row, cc)
        code = legend.code(data.get("category", ""))
        if code is None:
            raise ListImportError(f"{where}.category: {data.get('category')!r} is not a Citizen "
                               "Lab category code")
        data["category"] = code
        data["source"] = f"citizenlab/test-lists: {data.get('source', 'unknown')}"
        data["role"] = "test"
        data["interval"] = interval
        _check(data, where, legend)
        entries.append(data)
    return entries


def merge(name: str, curated: list[str | dict[str, str]], imported: list[dict[str, str]],
          provenance: str) -> tuple[str, int, int]:
    """The shipped list's text, with the number of curated and imported entries."""
    entries = [item for item in curated if isinstance(item, dict)]
    by_key = {same_site_key(entry["url"]): entry for entry in entries}
    seen = {entry["url"] for entry in entries}
    kept = []
    for entry in imported:
        twin = by_key.get(same_site_key(entry["url"]))
        if twin is not None:
            note = (f"also in Citizen Lab lists/{name}.csv as {entry['url']} "
                    f"({entry['category']}, {entry.get('date_added', '')}, "
                    f"{entry['source'].removeprefix('citizenlab/test-lists: ')})")
            twin["notes"] = "; ".join(filter(None, [twin.get("notes"), note]))
        elif entry["url"] not in seen:
            seen.add(entry["url"])
            kept.append(entry)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    out.write(f"# Generated by `python -m probe.config.targets_import`: do not edit this file, "
              f"edit curated/{name}.csv\n# and regenerate (README.md next to this file).\n")
    for item in curated:
        if isinstance(item, dict):
            writer.writerow(_row(item))
        else:
            out.write(item + "\n")
    out.write(f"#\n# Citizen Lab's test list lists/{name}.csv, {len(kept)} entries; date_added, "
              "source and notes\n# per entry are Citizen Lab's (entries listed above are left "
              f"out).\n# source: {provenance}\n")
    for entry in kept:
        writer.writerow(_row(entry))
    return out.getvalue(), len(entries), len(kept)


def checkout_commit(checkout: Path) -> tuple[str, str]:
    """Commit hash and date (YYYY-MM-DD) of a git checkout."""
    try:
        result = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%H %cs"],
                                capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ListImportError(f"{checkout} is not a git checkout; give --commit and "
                           "--commit-date") from exc
    commit, _, date = result.stdout.strip().partition(" ")
    return commit, date


def run(checkout: Path, out: Path, interval: str, commit: str | None = None,
        commit_date: str | None = None) -> dict[str, tuple[int, int]]:
    """Write the shipped lists and the category legend; returns, per list, the number of
    curated and of imported entries. Nothing is written unless every list imports."""
    parse_duration(interval)
    if not checkout.is_dir():
        raise ListImportError(f"{checkout}: no such directory")
    if commit is None:
        commit, found_date = checkout_commit(checkout)
        commit_date = commit_date or found_date
    lists = checkout / "lists"
    try:
        legend_text = (lists / LEGEND).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ListImportError(f"no lists/{LEGEND} in {checkout}: not a test-lists checkout") \
            from exc
    legend = Legend.parse(legend_text)
    provenance = (f"{REPOSITORY}\n# commit {commit}"
                  + (f" ({commit_date})" if commit_date else "") + f", licence {LICENCE}")
    texts: dict[str, str] = {}
    counts: dict[str, tuple[int, int]] = {}
    for name, cc in LISTS.items():
        curated = read_curated(out / "curated" / f"{name}.csv", legend)
        try:
            imported = read_citizenlab(lists / f"{name}.csv", cc, legend, interval)
        except OSError as exc:
            raise ListImportError(f"cannot read lists/{name}.csv: {exc.strerror}") from exc
        texts[name], curated_count, imported_count = merge(name, curated, imported, provenance)
        counts[name] = (curated_count, imported_count)
    for name, text in texts.items():
        _replace(out / f"{name}.csv", text)
    _replace(out / LEGEND_COPY, legend_text)
    return counts


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _lines(counts: dict[str, tuple[int, int]]) -> Iterable[str]:
    for name, (curated, imported) in counts.items():
        yield f"{name}.csv: {curated} curated + {imported} from Citizen Lab"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m probe.config.targets_import",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--test-lists", required=True, type=Path,
                        help="a checkout of github.com/citizenlab/test-lists")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the target-list directory, with curated/ (default: this "
                             "installation's configs/targets)")
    parser.add_argument("--interval", default="24h",
                        help="cadence of each imported entry (default 24h)")
    parser.add_argument("--commit", help="the checkout's commit, when it is not a git "
                                         "checkout (an unpacked archive)")
    parser.add_argument("--commit-date", help="that commit's date, YYYY-MM-DD")
    args = parser.parse_args(argv)
    try:
        counts = run(args.test_lists, args.out, args.interval, args.commit, args.commit_date)
    except (ListImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in _lines(counts):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
