"""Config loading: defaults, overlays, and one invalid file per rule with its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import config as collector_config
from probe.config import probe_config
from probe.core.typed_config import ConfigError, parse_duration

DATA = Path(__file__).parent / "testdata" / "configs"

PROBE_INVALID = [
    ("invalid-country.yaml", "identity.country: not a two-letter upper-case country code"),
    ("invalid-asn.yaml", "identity.asn: not an ASN like AS1234"),
    ("invalid-target-url.yaml", "targets[1].url: not an http(s) URL"),
    ("invalid-duration.yaml",
     "timeouts.dns: not a duration (use seconds or a string like '5s', '250ms', '2m')"),
    ("invalid-negative.yaml", "timeouts.dns: must not be negative"),
    ("invalid-concurrency.yaml", "schedule.concurrency: must be positive"),
    ("invalid-jitter.yaml", "schedule.jitter: must be in [0, 1)"),
    ("invalid-unknown-key.yaml", "identiti: unknown key"),
    ("invalid-role.yaml",
     "targets[0].role: must be one of 'test', 'baseline', 'canary', got 'victim'"),
    ("invalid-resolver.yaml", "resolvers: not IP or IP:PORT: '8.8.8.8:99999'"),
    ("invalid-collector-url.yaml", "collector.url: not an http(s) URL"),
    ("invalid-targets-type.yaml", "targets: expected a list, got a mapping"),
    ("invalid-target-file.yaml", "target_files[0][1].url: not an http(s) URL"),
    ("invalid-platform-names.yaml",
     "platforms.names: unknown platform 'icq' (known: telegram, whatsapp, signal, "
     "facebook_messenger, youtube, tiktok, instagram, x)"),
    ("invalid-platforms-file.yaml",
     "platforms.file: platforms/invalid-url.yaml: "
     "platforms.x.groups.web.urls[1]: not an http(s) URL"),
    ("invalid-platform-not-in-file.yaml",
     "platforms.names[1]: telegram is not in good-platforms.yaml"),
    ("invalid-platform-interval.yaml", "platforms.interval: must be positive"),
    ("invalid-trace-ttl.yaml", "censor_trace.max_ttl: must be in 1..64"),
    ("invalid-trace-control-name.yaml",
     "censor_trace.control_name: not a host name like example.com"),
    ("invalid-clock-offset.yaml",
     "clock.max_offset: not a duration (use seconds or a string like '5s', '250ms', '2m')"),
]

COLLECTOR_INVALID = [
    ("invalid-collector-listen.yaml", "listen: not HOST:PORT"),
    ("invalid-collector-database.yaml",
     "database: not a postgresql:// DSN nor a path ending in .sqlite or .db"),
    ("invalid-collector-batch.yaml", "limits.max_batch: must be positive"),
    ("invalid-collector-retention.yaml",
     "limits.retention: not a duration (use seconds or a string like '5s', '250ms', '2m')"),
    ("invalid-collector-auth.yaml", "auth.require_token: expected true or false, got a string"),
    ("invalid-collector-header-timeout.yaml", "limits.header_timeout: must be positive"),
]


@pytest.mark.parametrize(("name", "message"), PROBE_INVALID)
def test_invalid_probe_config(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        probe_config.load(DATA / name)
    assert str(caught.value) == message


@pytest.mark.parametrize(("name", "message"), COLLECTOR_INVALID)
def test_invalid_collector_config(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        collector_config.load(DATA / name)
    assert str(caught.value) == message


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"invalid-yaml.yaml line 2: invalid YAML"):
        probe_config.load(DATA / "invalid-yaml.yaml")


def test_good_probe_config_overlays_defaults() -> None:
    config = probe_config.load(DATA / "good-probe.yaml")
    assert config.identity.probe_id == "vps-bishkek-1"
    assert config.identity.asn == "AS8449"
    assert config.timeouts.dns == 0.25
    assert config.timeouts.http == 60.0
    assert config.timeouts.connect == 10.0  # default kept
    assert config.targets[0].category == "NEWS"
    assert config.control_base == "http://127.0.0.1:8080"


def test_shipped_configs_load() -> None:
    root = Path(__file__).parent.parent / "configs"
    probe = probe_config.load(root / "probe.yaml")
    assert any("kloop.kg" in t.url for t in probe.targets)
    assert all(t.cc in ("KG", "*") for t in probe.targets)
    assert probe.platforms.file == str((root / "platforms.yaml").resolve())
    collector = collector_config.load(root / "collector.yaml")
    assert collector.listen == "127.0.0.1:8080"


def test_collector_defaults_without_file() -> None:
    config = collector_config.load(None)
    assert (config.host, config.port, config.database) == ("127.0.0.1", 8080,
                                                           "var/kuzot.sqlite")


@pytest.mark.parametrize(("text", "seconds"), [(5, 5.0), ("250ms", 0.25), ("2m", 120.0),
                                                ("1h", 3600.0), ("1.5s", 1.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
