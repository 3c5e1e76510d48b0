"""The ``throttling:`` section of the probe config and the collector's ``sni_ab:`` section."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import config as collector_config
from probe.config import probe_config
from probe.core.typed_config import ConfigError


def test_throttling_defaults_are_off_and_modest(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text("identity: {probe_id: t}\n")
    settings = probe_config.load(path).throttling
    assert settings.enabled is False
    assert settings.interval == 6 * 3600
    assert settings.max_bytes_per_transfer == 512 * 1024
    # At most 6 MiB per target and round with the defaults.
    per_target = (2 * settings.repetitions + 2 * settings.ab_repetitions) \
        * settings.max_bytes_per_transfer
    assert per_target == 6 * 1024 * 1024


def test_throttling_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text("throttling: {enabled: true, interval: 1h, repetitions: 5,\n"
                    "  transfer_timeout: 4s, daily_budget_bytes: 20000000,\n"
                    "  innocuous_sni: www.example.org}\n")
    settings = probe_config.load(path).throttling
    assert (settings.enabled, settings.interval, settings.repetitions) == (True, 3600.0, 5)
    assert settings.transfer_timeout == 4.0
    assert settings.innocuous_sni == "www.example.org"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("throttling: {repetitions: 0}\n", "throttling.repetitions: must be positive"),
        ("throttling: {transfer_timeout: soon}\n", "throttling.transfer_timeout: not a duration"),
        ("throttling: {budget: 5}\n", "throttling.budget: unknown key"),
        ("throttling: {enabled: yes please}\n", "throttling.enabled: expected true or false"),
    ],
)
def test_bad_throttling_section(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        probe_config.load(path)
    assert str(caught.value).startswith(message)


def test_collector_sni_ab_section(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("sni_ab: {listen: '0.0.0.0:8443', object_bytes: 1048576}\n")
    config = collector_config.load(path)
    assert config.sni_ab.listen == "0.0.0.0:8443"
    assert config.sni_ab.object_bytes == 1 << 20
    assert collector_config.load(None).sni_ab.listen is None  # off unless configured


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sni_ab: {listen: nowhere}\n", "sni_ab.listen: not HOST:PORT"),
        ("sni_ab: {listen: '127.0.0.1:0', cert_file: c.pem}\n",
         "sni_ab: cert_file and key_file go together"),
        ("sni_ab: {object_bytes: -1}\n", "sni_ab.object_bytes: must be positive"),
    ],
)
def test_bad_collector_sni_ab_section(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        collector_config.load(path)
    assert message in str(caught.value)
