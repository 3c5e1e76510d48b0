"""Notification settings load with defaults and fail with the key path, one file per rule."""

from __future__ import annotations

import pytest

from collector import config as collector_config
from probe.core.typed_config import ConfigError
from tests.helpers.paths import CONFIGS, TESTDATA

DATA = TESTDATA / "configs"

INVALID = [
    ("invalid-notify-tier.yaml", "notifications.webhooks[0].min_tier: must be one of "
                                 "'suspected', 'likely', 'confirmed', got 'maybe'"),
    ("invalid-notify-secret.yaml",
     "notifications.webhooks[0]: exactly one of secret and secret_file is required"),
    ("invalid-notify-url.yaml", "notifications.webhooks[0].url: not an http(s) URL"),
    ("invalid-notify-chat.yaml",
     "notifications.telegram[0].chat_id: not a numeric chat id nor an @channel name"),
    ("invalid-notify-recipient.yaml",
     "notifications.email[0].recipients: not an e-mail address: 'desk'"),
    ("invalid-notify-tls.yaml", "notifications.email[0]: starttls and tls: choose one"),
    ("invalid-notify-names.yaml",
     "notifications: destination name 'webhook' is used twice; give each a name"),
    ("invalid-notify-retry.yaml", "notifications.retry.attempts: must be positive"),
    ("invalid-notify-key.yaml", "notifications.webhook: unknown key"),
]


@pytest.mark.parametrize(("name", "message"), INVALID)
def test_invalid_notification_config(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        collector_config.load(DATA / name)
    assert str(caught.value) == message


def test_good_notification_config() -> None:
    config = collector_config.load(DATA / "good-notifications.yaml")
    notify = config.notifications
    assert config.status_url == "https://status.kuzot.example"
    assert notify.max_per_hour == 6 and notify.retry.maximum == 120.0
    assert notify.webhooks[0].min_tier == "likely"           # media partners by default
    assert [t.language for t in notify.telegram] == ["ru", "en"]
    assert notify.telegram[1].min_tier == "suspected"
    assert notify.email[0].recipients == ("desk@media.example",)
    assert notify.email[0].starttls and notify.email[0].port == 587


def test_defaults_send_nothing() -> None:
    config = collector_config.load(None)
    assert not (config.notifications.webhooks or config.notifications.telegram
                or config.notifications.email)
    assert config.status_url == "http://127.0.0.1:8080"


def test_repository_collector_config_still_loads() -> None:
    collector_config.load(CONFIGS / "collector.yaml")
