"""Platform endpoint lists: the shipped file loads, and each invalid file fails with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.config import platforms as platform_config
from probe.core.typed_config import ConfigError
from tests.helpers.paths import REPO, TESTDATA

DATA = TESTDATA / "configs" / "platforms"

INVALID = [
    ("invalid-platform-name.yaml",
     "platforms.vkontakte: unknown platform (known: telegram, whatsapp, signal, "
     "facebook_messenger, youtube, tiktok, instagram, x)"),
    ("invalid-group-name.yaml",
     "platforms.telegram.groups.mobile: unknown group (expected: datacenters, web)"),
    ("invalid-missing-group.yaml",
     "platforms.whatsapp.groups.registration: required group is missing"),
    ("invalid-address.yaml",
     "platforms.telegram.groups.datacenters.addresses[1]: not an IP address"),
    ("invalid-port.yaml", "platforms.whatsapp.groups.endpoints.ports[1]: not a TCP port"),
    ("invalid-need.yaml",
     "platforms.youtube.groups.web.need: must be one of 'any', 'all', got 'most'"),
    ("invalid-url.yaml", "platforms.x.groups.web.urls[1]: not an http(s) URL"),
    ("invalid-empty-group.yaml",
     "platforms.signal.groups.backend: needs at least one of urls, hosts, addresses"),
    ("invalid-network.yaml",
     "platforms.facebook_messenger.groups.endpoints.networks[1]: "
     "not a network like 157.240.0.0/16"),
    ("invalid-host.yaml",
     "platforms.facebook_messenger.groups.endpoints.hosts[0]: "
     "not a host name (addresses go under addresses)"),
    ("invalid-timeout.yaml",
     "timeouts.connect: not a duration (use seconds or a string like '5s', '250ms', '2m')"),
    ("invalid-ca-file.yaml",
     "platforms.signal.groups.backend.ca_file: no such file: signal-ca.pem"),
]


@pytest.mark.parametrize(("name", "message"), INVALID)
def test_invalid_platforms_file(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        platform_config.load(DATA / name)
    assert str(caught.value) == message


def test_shipped_file_has_every_platform_with_ooni_groups() -> None:
    config = platform_config.load(REPO / "configs" / "platforms.yaml")
    assert tuple(config.platforms) == platform_config.PLATFORMS
    for name, groups in platform_config.OONI_GROUPS.items():
        assert set(config.platforms[name].groups) == groups
    telegram = config.platforms["telegram"].groups["datacenters"]
    assert telegram.ports == (80, 443) and telegram.need == "any"
    assert telegram.exchange == "http" and len(telegram.addresses) == 6
    whatsapp = config.platforms["whatsapp"].groups["endpoints"]
    assert len(whatsapp.hosts) == 16 and whatsapp.ports == (443, 5222)
    assert config.platforms["facebook_messenger"].groups["endpoints"].networks


def test_ca_file_is_taken_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "signal-ca.pem").write_text("placeholder; only its existence is checked\n")
    file = tmp_path / "platforms.yaml"
    file.write_text((DATA / "invalid-ca-file.yaml").read_text())
    config = platform_config.load(file)
    assert config.platforms["signal"].groups["backend"].ca_file == str(tmp_path / "signal-ca.pem")
