"""The ``outside:`` config section: the shipped files load, and each bad value fails by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import config as collector_config
from collector.outside.config import load_blocks
from collector.outside.wire import Method
from probe.core.typed_config import ConfigError

ROOT = Path(__file__).parents[3]


def test_the_shipped_config_names_the_shipped_block_files_and_is_off() -> None:
    outside = collector_config.load(ROOT / "configs" / "collector.yaml").outside
    assert outside.enabled is False
    assert outside.block_files == (str(ROOT / "configs" / "outside" / "kg-blocks.txt"),
                                   str(ROOT / "configs" / "outside" / "kz-blocks.txt"))
    blocks, opt_out = load_blocks(outside)
    assert {b.country for b in blocks} == {"KG", "KZ"} and opt_out == []
    assert (outside.rate, outside.round, outside.timeout) == (5.0, 300.0, 3.0)
    settings = outside.prober_settings()
    assert settings.methods == (Method.ICMP, Method.TCP) and settings.tcp_ports == (80, 443)
    assert outside.history_points == 7 * 24 * 12
    # Half of 5 packets/s x 300 s, at 16 addresses x (ICMP + 2 SYNs) per block: the least
    # discovery gets; the prober adds what the watched blocks leave of the round's packets.
    assert outside.discovery_blocks_per_round == 15 == settings.max_discovery_blocks
    assert (settings.round_packets, settings.discovery_share) == (1500, 0.5)
    assert outside.watch_per_network == 64 == settings.watch_per_network


def test_watch_per_network_zero_watches_every_block(tmp_path: Path) -> None:
    path = write(tmp_path, "  block_files: [blocks.txt]\n  watch_per_network: 0\n")
    outside = collector_config.load(path).outside
    assert outside.watch_per_network == 0 == outside.prober_settings().watch_per_network


def write(tmp_path: Path, section: str, blocks: str = "KZ AS64500 198.18.0.0/23\n") -> Path:
    (tmp_path / "blocks.txt").write_text(blocks)
    (tmp_path / "opt-out.txt").write_text("198.18.1.0/28  # asked by the owner\n")
    path = tmp_path / "collector.yaml"
    path.write_text(f"outside:\n{section}")
    return path


def test_paths_are_relative_to_the_config_and_the_opt_out_applies(tmp_path: Path) -> None:
    path = write(tmp_path, "  enabled: true\n  block_files: [blocks.txt]\n"
                           "  opt_out_file: opt-out.txt\n  round: 2m\n")
    outside = collector_config.load(path).outside
    blocks, _ = load_blocks(outside)
    assert [str(b.prefix) for b in blocks] == ["198.18.0.0/24"]
    assert outside.round == 120.0


@pytest.mark.parametrize(("section", "blocks", "message"), [
    ("  enabled: true\n", None, "outside: enabled needs at least one file in block_files"),
    ("  block_files: [missing.txt]\n", None,
     "outside: cannot read "),
    ("  block_files: [blocks.txt]\n", "KZ AS64500 198.18.0.0/25\n",
     "outside.block_files: blocks.txt:1: 198.18.0.0/25 is longer than /24"),
    ("  methods: [udp]\n", None, "outside.methods: unknown probe method 'udp' (icmp, tcp)"),
    ("  tcp_ports: [0]\n", None, "outside.tcp_ports: not a TCP port: 0"),
    ("  rate: 0\n", None, "outside.rate: must be positive"),
    ("  watch_per_network: -1\n", None,
     "outside.watch_per_network: must be >= 0 (0 watches every block)"),
    # The verdict's thresholds are detection.outside's, one set for the metrics and events.
    ("  warning_below: 0.4\n", None, "outside.warning_below: unknown key"),
    ("  speed: 3\n", None, "outside.speed: unknown key"),
])
def test_bad_values_fail_by_path(tmp_path: Path, section: str, blocks: str | None,
                                 message: str) -> None:
    path = write(tmp_path, section, *(() if blocks is None else (blocks,)))
    with pytest.raises(ConfigError) as caught:
        collector_config.load(path)
    assert str(caught.value).startswith(message)
