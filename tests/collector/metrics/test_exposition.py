"""The hand-rendered /metrics text is exactly what prometheus-client writes for the same data,
parses with prometheus-client's parser, and follows every change (no stale cache)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector.keys import registry_key
from collector.metrics.exposition import ExpositionRegistry, TextCounter, TextHistogram
from collector.metrics.ingest import StoreCollector, StoreSnapshot
from tests.helpers.fleet import running_collector

# Label values that need escaping, and some that look like they might.
AWKWARD = ['https://kloop.kg/', 'a"quote', "back\\slash", "new\nline", "юникод ✓", "", "{}=,"]
BUCKETS = (0.01, 0.5, 1.0, 10.0)
CREATED = re.compile(r"^(\w+_created(?:\{.*\})?) \S+$", re.MULTILINE)


def _masked(text: str) -> str:
    """The text with every _created value replaced (they are creation times)."""
    return CREATED.sub(r"\1 T", text)


def _feed(histogram: Histogram | TextHistogram, counter: Counter | TextCounter,
          rounds: range) -> None:
    for i in rounds:
        value = AWKWARD[i % len(AWKWARD)]
        histogram.labels("KG", value, str(i % 3)).observe(i * 0.37)
        counter.labels(value, "x" if i % 2 else "").inc(i % 4)


def _pair() -> tuple[CollectorRegistry, Histogram, Counter, ExpositionRegistry, TextHistogram,
                     TextCounter]:
    reference = CollectorRegistry()
    ours = ExpositionRegistry()
    doc = 'Help with a back\\slash,\na newline and "quotes".'
    return (reference,
            Histogram("kz_h_seconds", doc, ["cc", "target", "phase"], buckets=BUCKETS,
                      registry=reference),
            Counter("kz_c", doc, ["target", "layer"], registry=reference),
            ours,
            TextHistogram("kz_h_seconds", doc, ["cc", "target", "phase"], ours, BUCKETS),
            TextCounter("kz_c", doc, ["target", "layer"], ours))


def test_text_families_match_prometheus_client_byte_for_byte() -> None:
    reference, histogram, counter, ours, text_histogram, text_counter = _pair()
    assert ours.render() == generate_latest(reference)  # no children yet: HELP and TYPE only
    _feed(histogram, counter, range(40))
    _feed(text_histogram, text_counter, range(40))
    expected = generate_latest(reference).decode()
    got = ours.render().decode()
    assert _masked(got) == _masked(expected)
    assert got.count("_created") == expected.count("_created") > 0


def test_output_parses_to_the_same_samples() -> None:
    reference, histogram, counter, ours, text_histogram, text_counter = _pair()
    _feed(histogram, counter, range(25))
    _feed(text_histogram, text_counter, range(25))

    def parsed(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str],
                                                                   float]]]]:
        return [(f.name, f.type, f.documentation,
                 [(s.name, s.labels, s.value) for s in f.samples
                  if not s.name.endswith("_created")])
                for f in text_string_to_metric_families(text)]

    ours_parsed = parsed(ours.render().decode())
    assert ours_parsed == parsed(generate_latest(reference).decode())
    labels = {s[1].get("target") for f in ours_parsed for s in f[3]}
    assert set(AWKWARD) <= labels, "every awkward value survived escaping and parsing"


def test_changes_after_a_render_are_rendered_next_time() -> None:
    reference, histogram, counter, ours, text_histogram, text_counter = _pair()
    _feed(histogram, counter, range(20))
    _feed(text_histogram, text_counter, range(20))
    before = ours.render()
    assert ours.render() == before
    _feed(histogram, counter, range(20, 23))  # touches a few children, adds none
    _feed(text_histogram, text_counter, range(20, 23))
    after = ours.render()
    assert after != before
    assert _masked(after.decode()) == _masked(generate_latest(reference).decode())
    text_histogram.labels("KZ", "new", "0").observe(2.0)
    histogram.labels("KZ", "new", "0").observe(2.0)
    assert _masked(ours.render().decode()) == _masked(generate_latest(reference).decode())


def test_collect_gives_the_same_samples_as_the_text() -> None:
    """get_sample_value (and any prometheus-client consumer) sees what /metrics shows."""
    _, _, _, ours, text_histogram, text_counter = _pair()
    _feed(text_histogram, text_counter, range(30))
    assert generate_latest(ours) == ours.render()
    assert ours.get_sample_value("kz_h_seconds_bucket", {
        "cc": "KG", "target": 'a"quote', "phase": "1", "le": "+Inf"}) is not None


def _snapshot(targets: frozenset[str],
              rows: list[tuple[str, str, str, str, str | None]]) -> StoreSnapshot:
    snapshot = StoreSnapshot(targets)
    snapshot.total = 1234
    snapshot.verdicts = list(rows)
    return snapshot


def _row(cc: str, target: str, verdict: str | None) -> tuple[str, str, str, str, str | None]:
    return (cc, "AS8449", "web_connectivity", target, verdict)


def test_store_families_match_and_follow_the_store() -> None:
    targets = frozenset({'https://x.kg/?q="a"\\b', "https://kloop.kg/"})
    rows = [_row("KG", 'https://x.kg/?q="a"\\b', "blocked"), _row("KG", "https://kloop.kg/", None),
            _row("KZ", "https://unlisted.kz/", "ok"), _row("KZ", "https://other.kz/", "ok"),
            _row("KG", "", "ok")]
    snapshot = _snapshot(targets, rows)
    collector = StoreCollector(snapshot)
    registry = CollectorRegistry()
    registry.register(collector)
    assert collector.exposition().encode() == generate_latest(registry)
    assert 'target="other",test_name="web_connectivity",verdict="ok"} 2.0' in \
        collector.exposition()

    snapshot.verdicts = rows[:-1] + [_row("KG", "", "blocked")]
    snapshot.total = 1235
    changed = collector.exposition()
    assert changed.encode() == generate_latest(registry)
    assert 'target="",test_name="web_connectivity",verdict="blocked"} 1.0' in changed
    assert "kuzot_measurements_stored 1235.0" in changed

    snapshot.up = False
    assert collector.exposition().encode() == generate_latest(registry)
    assert "kuzot_target_verdict" not in collector.exposition()


async def test_the_collectors_metrics_page_is_what_prometheus_client_would_write(
        tmp_path: Path) -> None:
    """The whole page of a real collector fed by a fleet: /metrics over HTTP is exactly
    generate_latest() of the same registry, before and after more ingest."""
    async with running_collector(tmp_path) as collector, aiohttp.ClientSession() as session:
        registry = collector.app[registry_key]
        pages = []
        for depth in (3, 5):
            await collector.feed_wave(queue_depth=depth)
            async with session.get(collector.base + "/metrics") as response:
                page = await response.read()
            assert page == generate_latest(registry)
            pages.append(page.decode())
        assert pages[0] != pages[1]
        for page in pages:
            names = {f.name for f in text_string_to_metric_families(page)}
            assert {"kuzot_phase_duration_seconds", "kuzot_target_measurements",
                    "kuzot_target_verdict", "kuzot_store_up"} <= names


def test_values_on_and_beside_every_bound_fall_in_the_same_buckets() -> None:
    reference, histogram, _, ours, text_histogram, _ = _pair()
    values = [0.0, -1.0, 1e9, float("inf"), float("nan")]
    for bound in BUCKETS:
        values += [bound, bound * (1 - 1e-12), bound * (1 + 1e-12)]
    for index, value in enumerate(values):
        for family in (histogram, text_histogram):
            family.labels("KZ", f"t{index % 3}", "connect").observe(value)
    assert _masked(ours.render().decode()) == _masked(generate_latest(reference).decode())


def test_observing_many_at_once_is_observing_each_in_turn() -> None:
    """``observe_many`` (a batch of uploads' values per series) against prometheus-client's
    ``observe`` of each value: the same buckets and the same sum, to the last bit (values
    whose sum depends on the order of addition, and a NaN, which only the sum counts)."""
    reference, histogram, _, ours, text_histogram, _ = _pair()
    values = [0.1, 1e16, -1e16, 0.2, 0.30000000000000004, 3.0, 10.0, 11.0, float("nan"),
              *(bound for bound in BUCKETS)]
    for value in values:
        histogram.labels("KG", "t", "connect").observe(value)
    text_histogram.labels("KG", "t", "connect").observe_many(iter(values))
    for value in values[:5]:
        histogram.labels("KZ", "u", "tls").observe(value)
    text_histogram.labels("KZ", "u", "tls").observe_many(values[:5])
    text_histogram.labels("KZ", "u", "tls").observe_many([])
    got, expected = ours.render().decode(), generate_latest(reference).decode()
    assert _masked(got) == _masked(expected)
    assert 'kz_h_seconds_count{cc="KG",phase="connect",target="t"} 12.0' in got  # NaN in no bucket
