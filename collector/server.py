"""The listening server: the application behind a deadline for each request head.

A client that opens a connection and sends its request line and headers slowly (slowloris)
holds a connection and a parser for as long as it likes: aiohttp's keep-alive timer is meant
for idle connections, and in older aiohttp releases does not even start before a first request
has arrived. The collector faces the Internet, so each connection here gets a deadline of its
own, whatever the aiohttp version: the head of a request must be complete ``header_timeout``
seconds after the connection opens, or after the first byte that follows the previous
request. A late client is answered ``408 Request Timeout`` and disconnected. Bodies are not
under this deadline: a probe on a throttled link may take long to upload a batch, and the
body size is bounded anyway.

How: every protocol the server creates is wrapped in a ``_Guard`` that arms a timer when the
connection opens and when data arrives between requests; the outermost middleware disarms
it once aiohttp has parsed a head and handed the request over, so a handler that takes its
time is never cut off. Nothing in aiohttp itself is patched.

Requests aiohttp's parser rejects before any handler runs (a ``Content-Length`` beside a
``Transfer-Encoding``, a header line it cannot read) are answered by the protocol itself, as
text. Every answer of this API is JSON, its clients parse errors as ``{"error": ...}``, so
each connection's protocol is a ``JsonErrorRequestHandler``: the same protocol, whose error
answer is the JSON error object with the same status and the parser's reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from collector.api.security import HEADERS as SECURITY_HEADERS
from collector.store import StoreUnavailable

log = logging.getLogger(__name__)

_TIMEOUT_TEXT = b"request line and headers not received in time\n"
TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                    b"Content-Type: text/plain\r\nContent-Length: "
                    + str(len(_TIMEOUT_TEXT)).encode() + b"\r\n\r\n" + _TIMEOUT_TEXT)


class _Guard(asyncio.Protocol):
    """One connection's protocol, passed through, with the head deadline."""

    def __init__(self, deadline: HeadDeadline, inner: asyncio.Protocol) -> None:
        self.deadline = deadline
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.in_request = False

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.deadline.timeout, self._expire)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        self.timer = None
        if self.transport is None or self.in_request or self.transport.is_closing():
            return
        self.deadline.expired += 1
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()

    def head_done(self) -> None:
        self.in_request = True
        self._disarm()

    def request_done(self) -> None:
        # The next head's deadline starts with its first byte (data_received); until then
        # the connection is idle, which aiohttp's keep-alive timeout bounds.
        self.in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.deadline.guards[transport] = self
        self._arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.in_request and self.timer is None:
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is not None:
            self.deadline.guards.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's request protocol, answering requests it cannot parse with a JSON error."""

    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs; may raise
        # The parser's message goes on to quote the offending line (a token, perhaps): the
        # answer names the reason only.
        reason = (message or "").strip().splitlines()[0].rstrip(":") if message else ""
        if status == 500 or not reason:
            reason = "internal error" if status == 500 else "malformed request"
        response = web.Response(status=plain.status, content_type="application/json",
                                text=json.dumps({"error": reason}),
                                headers=SECURITY_HEADERS)
        response.force_close()
        return response


def json_errors(factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """Each protocol ``factory`` makes, with JSON error answers for unparsable requests.

    The class of the protocol aiohttp builds is swapped for a subclass that adds no state
    (``__slots__ = ()``), so no private constructor arguments of aiohttp are needed."""
    def make() -> asyncio.Protocol:
        protocol = factory()
        if type(protocol) is RequestHandler:
            protocol.__class__ = JsonErrorRequestHandler
        return protocol
    return make


class HeadDeadline:
    """The deadline for request heads, shared by every connection of one server."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.guards: dict[asyncio.BaseTransport, _Guard] = {}
        self.expired = 0  # connections closed for a late head, for tests and logs

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guard(self, factory())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        guard = self.guards.get(request.transport) if request.transport else None
        if guard is not None:
            guard.head_done()
        try:
            return await handler(request)
        finally:
            if guard is not None:
                guard.request_done()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are under a ``HeadDeadline``."""

    __slots__ = ("_host", "_port", "_deadline")

    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 deadline: HeadDeadline) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._deadline = deadline

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._deadline.wrap(json_errors(server)), self._host, self._port, reuse_address=True)


class StartupError(Exception):
    """The collector could not start for a reason its operator can fix (the port is taken,
    the database file is not a database, the PostgreSQL server cannot be reached): said in
    one line, not a traceback."""


async def serve(app: web.Application, host: str, port: int, header_timeout: float,
                access_log_format: str,
                on_listening: Callable[[], None] | None = None) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then shut down as ``web.run_app`` does.
    ``on_listening`` runs once the socket is bound, so "serving on ..." is never said of a
    port that turns out to be taken."""
    deadline = HeadDeadline(header_timeout)
    app.middlewares.insert(0, deadline.middleware)
    runner = web.AppRunner(app, access_log_format=access_log_format)
    try:
        await runner.setup()
    except (OSError, sqlite3.DatabaseError, StoreUnavailable) as exc:
        raise StartupError(f"cannot open the database: {exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await GuardedSite(runner, host, port, deadline).start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: "
                               f"{exc.strerror or exc}") from exc
        if on_listening is not None:
            on_listening()
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        if deadline.expired:
            log.info("%d connections closed for a request head slower than %.0f s",
                     deadline.expired, header_timeout)
