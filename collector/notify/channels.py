"""Delivery channels: a signed webhook, a Telegram Bot API chat, and e-mail over SMTP.

Each channel sends one already-rendered message and either returns or raises
``DeliveryError``, which says whether trying again can help and, when the other side said so,
how long to wait. Retrying, rate limiting and deduplication live in ``dispatch.py``, not here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import aiohttp

from collector.notify.config import Email, Telegram, Webhook, read_secret
from collector.notify.decide import Transition
from collector.notify.templates import Message, event_link

SIGNATURE_HEADER = "X-Kuzot-Signature"
TIMESTAMP_HEADER = "X-Kuzot-Timestamp"
TELEGRAM_LIMIT = 4096


class DeliveryError(Exception):
    """A message was not delivered. ``permanent`` means retrying the same message cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    name: str

    async def deliver(self, message: Message, transitions: list[Transition],
                      public_url: str) -> None:
        """Send ``message`` (about ``transitions``) or raise DeliveryError."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``timestamp + "." + body``.

    The timestamp is inside the signed bytes so a captured request cannot be replayed later
    with a fresh timestamp; receivers reject timestamps too far from their own clock.
    """
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now: float,
           tolerance: float = 300.0) -> bool:
    """What a receiver does: a constant-time compare, and a timestamp within ``tolerance``."""
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _http_failure(status: int, retry_after: float | None, detail: str) -> DeliveryError:
    # 408 and 429 and every 5xx are the other side's temporary trouble; other 4xx mean this
    # request is wrong (bad token, unknown chat) and sending it again would be the same.
    temporary = status in (408, 429) or status >= 500
    return DeliveryError(f"HTTP {status}: {detail[:200]}", permanent=not temporary,
                         retry_after=retry_after)


def webhook_body(message: Message, transitions: list[Transition], public_url: str,
                 language: str) -> bytes:
    changes = [{"change": t.change, "previous_tier": t.previous_tier,
                "event": t.event.to_json(), "link": event_link(public_url, t.event.id)}
               for t in transitions]
    document = {"source": "kuzot", "language": language, "changes": changes,
                "message": {"subject": message.subject, "text": message.text}}
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")


class WebhookChannel:
    def __init__(self, config: Webhook, clock: Callable[[], float] = time.time) -> None:
        self.name = config.name
        self.config = config
        self.clock = clock

    async def deliver(self, message: Message, transitions: list[Transition],
                      public_url: str) -> None:
        body = webhook_body(message, transitions, public_url, self.config.language)
        secret = read_secret(self.config.secret, self.config.secret_file).encode("utf-8")
        timestamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(secret, timestamp, body), "User-Agent": "kuzot"}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                    self.config.url, data=body, headers=headers) as response:
                if response.status >= 300:
                    raise _http_failure(response.status,
                                        _retry_after(response.headers.get("Retry-After")),
                                        await response.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


class TelegramChannel:
    def __init__(self, config: Telegram) -> None:
        self.name = config.name
        self.config = config

    async def deliver(self, message: Message, transitions: list[Transition],
                      public_url: str) -> None:
        token = read_secret(self.config.bot_token, self.config.bot_token_file)
        url = f"{self.config.api_base.rstrip('/')}/bot{token}/sendMessage"
        text = message.html
        if len(text) > TELEGRAM_LIMIT:
            # Cutting HTML could leave a tag open, which Telegram rejects; plain text is safe.
            text = message.text[: TELEGRAM_LIMIT - 1] + "…"
            payload: dict[str, Any] = {"chat_id": self.config.chat_id, "text": text}
        else:
            payload = {"chat_id": self.config.chat_id, "text": text, "parse_mode": "HTML"}
        payload["disable_web_page_preview"] = True
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                    url, json=payload) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status == 200 and isinstance(answer, dict) and answer.get("ok") is True:
            return
        # The Bot API says how long to wait in parameters.retry_after when it throttles a bot.
        parameters = answer.get("parameters") if isinstance(answer, dict) else None
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        detail = answer.get("description", "") if isinstance(answer, dict) else ""
        raise _http_failure(response.status,
                            float(retry_after) if isinstance(retry_after, int | float) else None,
                            str(detail))


class EmailChannel:
    """SMTP with the standard library, run in a thread so the event loop never blocks on it."""

    def __init__(self, config: Email) -> None:
        self.name = config.name
        self.config = config

    async def deliver(self, message: Message, transitions: list[Transition],
                      public_url: str) -> None:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(self.config.recipients)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain="kuzot")
        # Every message about one event names the same thread, so mail clients group an
        # event's opening, escalation and closing together.
        if len(transitions) == 1:
            thread = f"<event-{transitions[0].event.id}@kuzot>"
            mail["References"] = thread
            mail["In-Reply-To"] = thread
        mail.set_content(message.text)
        try:
            await asyncio.to_thread(self._send, mail)
        except smtplib.SMTPResponseException as exc:
            # SMTP 4xx replies are temporary by definition (RFC 5321 §4.2.1), 5xx permanent.
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                                permanent=exc.smtp_code >= 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipients refused: {exc.recipients!r}",
                                permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    def _send(self, mail: EmailMessage) -> None:
        config = self.config
        context = ssl.create_default_context(cafile=config.ca_file)
        client: smtplib.SMTP
        if config.tls:
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                      context=context)
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with client:
            if config.starttls:
                client.starttls(context=context)
            if config.username is not None:
                client.login(config.username,
                             read_secret(config.password, config.password_file))
            client.send_message(mail)
