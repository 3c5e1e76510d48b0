"""Notification settings of the collector (``notifications:`` in the collector config).

Secrets may be inline or in a file (``secret_file``, ``bot_token_file``, ``password_file``) so
that a config file can be shared without them. A destination without its secret fails at load
with the key path, like every other config error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from probe.core.typed_config import checked, duration_field, is_http_url, non_negative, positive

TierName = Literal["suspected", "likely", "confirmed"]
LanguageName = Literal["en", "ru"]


def _one_of(inline: str | None, file: str | None, what: str) -> None:
    if (inline is None) == (file is None):
        raise ValueError(f"exactly one of {what} and {what}_file is required")


def read_secret(inline: str | None, file: str | None) -> str:
    """The secret itself: inline, or the first line of the file (read when sending)."""
    if inline is not None:
        return inline
    assert file is not None
    return Path(file).read_text(encoding="utf-8").strip()


def _chat_id(value: str) -> str | None:
    ok = value.lstrip("-").isdigit() or (value.startswith("@") and len(value) > 1)
    return None if ok else "not a numeric chat id nor an @channel name"


def _address(value: str) -> str | None:
    local, at, domain = value.rpartition("@")
    return None if at and local and "." in domain and " " not in value else "not an e-mail address"


def _addresses(value: tuple[str, ...]) -> str | None:
    if not value:
        return "at least one recipient is required"
    for address in value:
        if _address(address):
            return f"not an e-mail address: {address!r}"
    return None


@dataclass(frozen=True, slots=True)
class Webhook:
    """POST of the event JSON, signed with HMAC-SHA256 over ``timestamp.body``."""

    url: str = checked("", is_http_url)
    name: str = "webhook"
    secret: str | None = None
    secret_file: str | None = None
    min_tier: TierName = "likely"
    language: LanguageName = "en"
    timeout: float = duration_field(10.0, positive)

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("url: required")
        _one_of(self.secret, self.secret_file, "secret")


@dataclass(frozen=True, slots=True)
class Telegram:
    """A Telegram Bot API chat; ``api_base`` points elsewhere only for tests and proxies."""

    chat_id: str = checked("", _chat_id)
    name: str = "telegram"
    api_base: str = checked("https://api.telegram.org", is_http_url)
    bot_token: str | None = None
    bot_token_file: str | None = None
    min_tier: TierName = "likely"
    language: LanguageName = "ru"
    timeout: float = duration_field(10.0, positive)

    def __post_init__(self) -> None:
        if not self.chat_id:
            raise ValueError("chat_id: required")
        _one_of(self.bot_token, self.bot_token_file, "bot_token")


@dataclass(frozen=True, slots=True)
class Email:
    """E-mail over SMTP; ``starttls`` upgrades the connection, ``tls`` starts with TLS (465)."""

    host: str = ""
    sender: str = checked("", _address)
    recipients: tuple[str, ...] = checked((), _addresses)
    name: str = "email"
    port: int = checked(25, positive)
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    min_tier: TierName = "likely"
    language: LanguageName = "en"
    timeout: float = duration_field(20.0, positive)

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host: required")
        if not self.sender or not self.recipients:
            raise ValueError("sender and recipients: required")
        if self.starttls and self.tls:
            raise ValueError("starttls and tls: choose one")
        if self.username is not None:
            _one_of(self.password, self.password_file, "password")


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff with full jitter between ``initial`` and ``maximum``."""

    attempts: int = checked(6, positive)
    initial: float = duration_field(2.0, positive)
    maximum: float = duration_field(300.0, positive)


@dataclass(frozen=True, slots=True)
class Notifications:
    """Native notifications, for deployments without Alertmanager. None configured by default."""

    webhooks: tuple[Webhook, ...] = ()
    telegram: tuple[Telegram, ...] = ()
    email: tuple[Email, ...] = ()
    # What each destination was told survives restarts here, so a restart never re-sends.
    state_file: str = "var/notify-state.json"
    # At most this many messages per destination per hour; more changes wait and are then
    # sent together as one digest message.
    max_per_hour: int = checked(12, positive)
    # When more than this many changes are waiting for one destination, they go as one digest.
    digest_after: int = checked(3, positive)
    retry: Retry = field(default_factory=Retry)
    # Closed events are forgotten after this long (the state file stays small).
    forget_after: float = duration_field(30 * 86400.0, non_negative)

    def __post_init__(self) -> None:
        names = ([w.name for w in self.webhooks] + [t.name for t in self.telegram]
                 + [e.name for e in self.email])
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"destination name {name!r} is used twice; give each a name")
