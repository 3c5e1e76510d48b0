"""The collector's configuration: the shipped example loads, and each new key fails by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import config as collector_config
from probe.core.typed_config import ConfigError
from tests.helpers.paths import REPO, TESTDATA

DATA = TESTDATA / "configs"


def test_the_example_config_loads_with_its_target_lists() -> None:
    config = collector_config.load(REPO / "configs" / "collector.yaml")
    assert config == collector_config.CollectorConfig(targets=config.targets,
                                                      target_categories=config.target_categories,
                                                      target_files=config.target_files,
                                                      target_lists=config.target_lists,
                                                      detection=config.detection,
                                                      outside=config.outside)
    assert config.target_lists.directory == str(REPO / "configs" / "targets")
    assert config.detection.event_windows == str(REPO / "configs" / "events.yaml")
    assert config.detection.networks["KZ"].incumbent == ("AS9198",)
    assert "https://kloop.kg/" in config.targets and "https://vlast.kz/" in config.targets
    assert len(config.targets) == len(set(config.targets))
    # The categories of the listed sites, for the status page and category_code queries.
    assert dict(config.target_categories)["https://kloop.kg/"] == "NEWS"
    assert config.status.countries == ("KG", "KZ")


@pytest.mark.parametrize(("name", "message"), [
    ("invalid-collector-address-header.yaml", "client_address_header: not an HTTP header name"),
    ("invalid-collector-query.yaml", "query.max_page_size: must be positive"),
    ("invalid-collector-target-file.yaml",
     "target_files[0]: cannot read missing.csv: No such file or directory"),
])
def test_invalid_collector_config(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        collector_config.load(DATA / name)
    assert str(caught.value) == message


def test_archiving_is_off_by_default_and_takes_a_duration(tmp_path: Path) -> None:
    assert collector_config.CollectorConfig().storage.archive_after is None
    path = tmp_path / "collector.yaml"
    path.write_text("storage: {archive_after: 90d, archive_dir: /srv/kuzot/archive}\n")
    storage = collector_config.load(path).storage
    assert (storage.archive_after, storage.archive_dir) == (90 * 86400.0, "/srv/kuzot/archive")
    path.write_text("storage: {archive_after: 0}\n")
    with pytest.raises(ConfigError, match="storage.archive_after: must be positive"):
        collector_config.load(path)


def test_a_bucket_for_archives_takes_its_secret_from_a_file(tmp_path: Path) -> None:
    assert collector_config.CollectorConfig().storage.s3_settings() is None
    path = tmp_path / "collector.yaml"
    (tmp_path / "secret").write_text("s3cr3t\n")
    path.write_text("storage: {archive_url: s3://kuzot/kg, s3_endpoint: 'http://[::1]:9000', "
                    "s3_region: kg-1, s3_access_key_id: AKID, s3_secret_access_key_file: secret, "
                    "archive_cache_mb: 8}\n")
    settings = collector_config.load(path).storage.s3_settings()
    assert settings is not None
    assert (settings.url, settings.endpoint, settings.region, settings.access_key_id,
            settings.secret_access_key, settings.cache_bytes) == (
        "s3://kuzot/kg", "http://[::1]:9000", "kg-1", "AKID", "s3cr3t", 8 * 1024 * 1024)
    path.write_text("storage: {archive_url: 'https://kuzot/kg'}\n")
    with pytest.raises(ConfigError, match="storage.archive_url: 'https://kuzot/kg' is not s3"):
        collector_config.load(path)
    path.write_text("storage: {archive_url: s3://kuzot, s3_secret_access_key_file: nowhere}\n")
    with pytest.raises(ConfigError, match="storage.s3_secret_access_key_file: no such file"):
        collector_config.load(path)
    path.write_text("storage: {archive_url: s3://kuzot, s3_secret_access_key_file: secret}\n")
    with pytest.raises(ConfigError, match="storage.s3_access_key_id: required"):
        collector_config.load(path)
