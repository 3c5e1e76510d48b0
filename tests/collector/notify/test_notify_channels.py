"""Each channel against a real local server: an aiohttp webhook receiver, an aiohttp server
speaking the Telegram Bot API's sendMessage, and aiosmtpd's SMTP server (plain and STARTTLS
with a trustme certificate)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from collector.notify.channels import (
    DeliveryError,
    EmailChannel,
    TelegramChannel,
    WebhookChannel,
    verify,
)
from collector.notify.config import Email, Telegram, Webhook
from collector.notify.decide import Transition
from collector.notify.templates import Message, render
from tests.collector.notify.test_notify_decide import event
from tests.helpers.ports import free_port
from tests.helpers.servers import serve_app, server_context

SECRET = "correct horse battery staple"


def transition() -> Transition:
    return Transition("opened", event())


async def test_webhook_is_signed_over_timestamp_and_body() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with serve_app(app) as port:
        channel = WebhookChannel(Webhook(url=f"http://127.0.0.1:{port}/hook", secret=SECRET))
        change = transition()
        await channel.deliver(render(change, "en", "https://s"), [change], "https://s")

    headers, body = seen[0]
    timestamp = headers["X-Kuzot-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 30
    # Computed here independently of the code under test.
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Kuzot-Signature"] == f"sha256={expected}"
    document = json.loads(body)
    assert document["changes"][0]["change"] == "opened"
    assert document["changes"][0]["event"]["id"] == "ev1"
    assert document["changes"][0]["link"] == "https://s/events/ev1"
    assert document["message"]["text"].startswith("Blocking in Kazakhstan (likely)\n")
    # The receiver-side check accepts it, and refuses a changed body or an old timestamp.
    now = time.time()
    signature = headers["X-Kuzot-Signature"]
    assert verify(SECRET.encode(), timestamp, body, signature, now)
    assert not verify(SECRET.encode(), timestamp, body + b" ", signature, now)
    assert not verify(SECRET.encode(), timestamp, body, signature, now + 3600)
    assert not verify(b"other", timestamp, body, signature, now)


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (503, False), (429, False),
                                                    (400, True), (404, True)])
async def test_webhook_failures_say_whether_to_retry(status: int, permanent: bool) -> None:
    async def receive(request: web.Request) -> web.Response:
        return web.Response(status=status, text="nope", headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with serve_app(app) as port:
        channel = WebhookChannel(Webhook(url=f"http://127.0.0.1:{port}/hook", secret=SECRET))
        with pytest.raises(DeliveryError) as caught:
            await channel.deliver(render(transition(), "en", "https://s"), [transition()],
                                  "https://s")
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == 7.0


async def test_webhook_to_a_closed_port_is_a_temporary_failure() -> None:
    channel = WebhookChannel(Webhook(url=f"http://127.0.0.1:{free_port()}/", secret=SECRET))
    with pytest.raises(DeliveryError) as caught:
        await channel.deliver(render(transition(), "en", "https://s"), [transition()], "x")
    assert not caught.value.permanent


def telegram_app(calls: list[tuple[str, dict[str, Any]]], answer: dict[str, Any],
                 status: int = 200) -> web.Application:
    async def send(request: web.Request) -> web.Response:
        calls.append((request.match_info["token"], await request.json()))
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", send)
    return app


async def test_telegram_sends_html_to_the_chat(tmp_path: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    token_file = tmp_path / "token"
    token_file.write_text("123:ABC\n")
    async with serve_app(telegram_app(calls, {"ok": True, "result": {"message_id": 1}})) as port:
        channel = TelegramChannel(Telegram(chat_id="-100200300", bot_token_file=str(token_file),
                                           api_base=f"http://127.0.0.1:{port}"))
        message = render(transition(), "ru", "https://s")
        await channel.deliver(message, [transition()], "https://s")
    token, payload = calls[0]
    assert token == "123:ABC"
    assert payload["chat_id"] == "-100200300" and payload["parse_mode"] == "HTML"
    assert payload["text"] == message.html
    assert payload["text"].startswith("<b>Блокировка: Казахстан (вероятно)</b>")


async def test_telegram_throttling_carries_retry_after_and_bad_chat_is_permanent() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    limited = {"ok": False, "error_code": 429, "description": "Too Many Requests",
               "parameters": {"retry_after": 3}}
    async with serve_app(telegram_app(calls, limited, status=429)) as port:
        channel = TelegramChannel(Telegram(chat_id="1", bot_token="t",
                                           api_base=f"http://127.0.0.1:{port}"))
        with pytest.raises(DeliveryError) as caught:
            await channel.deliver(render(transition(), "en", "s"), [transition()], "s")
    assert not caught.value.permanent and caught.value.retry_after == 3.0
    missing = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    async with serve_app(telegram_app(calls, missing, status=400)) as port:
        channel = TelegramChannel(Telegram(chat_id="1", bot_token="t",
                                           api_base=f"http://127.0.0.1:{port}"))
        with pytest.raises(DeliveryError, match="chat not found") as caught:
            await channel.deliver(render(transition(), "en", "s"), [transition()], "s")
    assert caught.value.permanent


async def test_telegram_long_message_falls_back_to_plain_text() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    # Messages are short by construction (eight sites at most); a digest of many long
    # headlines can still pass Telegram's limit.
    change = Transition("opened", event())
    huge = Message(subject="s", text="\n".join(["line " + "x" * 100] * 60),
                   html="\n".join(["<b>line</b> " + "x" * 100] * 60))
    async with serve_app(telegram_app(calls, {"ok": True})) as port:
        channel = TelegramChannel(Telegram(chat_id="1", bot_token="t",
                                           api_base=f"http://127.0.0.1:{port}"))
        await channel.deliver(huge, [change], "s")
    payload = calls[0][1]
    assert len(payload["text"]) <= 4096 and "parse_mode" not in payload


class Sink:
    """An aiosmtpd handler that keeps messages, or refuses recipients when told to."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.messages: list[tuple[Envelope, EmailMessage]] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(content, policy=default_policy)))
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


async def test_email_over_smtp_threads_messages_by_event(
        smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    channel = EmailChannel(Email(host="127.0.0.1", port=port, sender="alerts@kuzot.example",
                                 recipients=("desk@media.example", "ru@media.example")))
    for change in (Transition("opened", event()),
                   Transition("escalated", event("confirmed"), "likely")):
        await channel.deliver(render(change, "en", "https://s"), [change], "https://s")
    assert len(sink.messages) == 2
    envelope, mail = sink.messages[0]
    assert envelope.mail_from == "alerts@kuzot.example"
    assert envelope.rcpt_tos == ["desk@media.example", "ru@media.example"]
    assert mail["Subject"] == "[Kuzot] Blocking in Kazakhstan (likely)"
    assert "Details: https://s/events/ev1" in mail.get_content()
    assert mail["References"] == sink.messages[1][1]["References"] == "<event-ev1@kuzot>"
    assert mail["Message-ID"] != sink.messages[1][1]["Message-ID"]


async def test_email_in_russian_survives_the_trip(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    channel = EmailChannel(Email(host="127.0.0.1", port=port, sender="a@kuzot.example",
                                 recipients=("b@media.example",), language="ru"))
    change = Transition("opened", event())
    await channel.deliver(render(change, "ru", "https://s"), [change], "https://s")
    mail = sink.messages[0][1]
    assert mail["Subject"] == "[Kuzot] Блокировка: Казахстан (вероятно)"
    assert "Казахстан" in mail.get_content()


async def test_email_refused_recipient_is_permanent() -> None:
    controller = Controller(Sink(refuse=True), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        channel = EmailChannel(Email(host="127.0.0.1", port=controller.port,
                                     sender="a@kuzot.example", recipients=("b@x.example",)))
        with pytest.raises(DeliveryError) as caught:
            await channel.deliver(render(transition(), "en", "s"), [transition()], "s")
    finally:
        controller.stop()
    assert caught.value.permanent


async def test_email_with_starttls(ca: trustme.CA, ca_file: str) -> None:
    sink = Sink()
    context = server_context(ca, "127.0.0.1")
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            tls_context=context, require_starttls=True)
    controller.start()
    try:
        channel = EmailChannel(Email(host="127.0.0.1", port=controller.port, starttls=True,
                                     ca_file=ca_file, sender="a@kuzot.example",
                                     recipients=("b@media.example",)))
        await channel.deliver(render(transition(), "en", "s"), [transition()], "s")
        plain = EmailChannel(Email(host="127.0.0.1", port=controller.port,
                                   sender="a@kuzot.example", recipients=("b@media.example",)))
        with pytest.raises(DeliveryError):
            await plain.deliver(render(transition(), "en", "s"), [transition()], "s")
    finally:
        controller.stop()
    assert len(sink.messages) == 1
