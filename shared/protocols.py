"""Sanic's connection protocols with a total deadline on each request head.

Sanic 25.12's `REQUEST_TIMEOUT` restarts on every byte received, so a client trickling a
header byte every few seconds holds a connection (and a file descriptor) forever.
Here each connection arms one timer per request head, `HTTP_HEADER_TIMEOUT` seconds:

- the first head's deadline runs from the moment the connection is accepted (a client
  that connects and sends nothing is closed too);
- on a kept-alive connection, each next head's deadline runs from its first byte (the
  wait before it is Sanic's `KEEP_ALIVE_TIMEOUT`);
- the timer is cancelled once the head is parsed, so a request body, a handler or a
  WebSocket (its upgrade request is a head like any other) is never cut by it.

When the deadline passes, the connection task is cancelled the way Sanic's own timeouts
do it: mid-head, the client gets 408 and the connection is closed; before any byte, it
is just closed.
"""

from __future__ import annotations

import asyncio

from sanic import Sanic
from sanic.exceptions import RequestTimeout
from sanic.server.protocols.http_protocol import HttpProtocol
from sanic.server.protocols.websocket_protocol import WebSocketProtocol

from shared.http_head import CheckedHttp

HEADER_TIMEOUT_CONFIG = "HTTP_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0


class HeadDeadline:
    """Mixin for a Sanic `HttpProtocol`: one timer per request head (see module doc)."""

    HTTP_CLASS = CheckedHttp
    _head_timer: asyncio.TimerHandle | None = None

    # Provided by HttpProtocol.
    app: Sanic
    loop: asyncio.AbstractEventLoop
    _task: asyncio.Task[None] | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_finished()
        super().connection_lost(exc)  # type: ignore[misc]

    def head_started(self) -> None:
        """A head begins (its first byte is in): start its clock unless one runs already."""
        if self._head_timer is None:
            self._arm_head_timer()

    def head_finished(self) -> None:
        """The head is parsed (or failed, or the connection is gone): stop its clock."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _arm_head_timer(self) -> None:
        timeout = float(self.app.config.get(HEADER_TIMEOUT_CONFIG, DEFAULT_HEADER_TIMEOUT))
        self._head_timer = self.loop.call_later(timeout, self._head_overdue)

    def _head_overdue(self) -> None:
        self._head_timer = None
        http = getattr(self, "_http", None)  # unset until the connection task starts
        if http is not None:
            # Read by Sanic's Http when its task is cancelled: it answers with this error.
            http.exception = RequestTimeout("The request head took too long")
        if self._task is not None:
            self._task.cancel()


class HeadDeadlineHttpProtocol(HeadDeadline, HttpProtocol):
    """Sanic's HTTP protocol with the head deadline and head checks."""


class HeadDeadlineWebSocketProtocol(HeadDeadline, WebSocketProtocol):
    """Sanic's WebSocket-capable protocol with the head deadline and head checks."""


def guarded_protocol(app: Sanic) -> type[HttpProtocol]:
    """The protocol class Sanic would pick for `app`, with the deadline and head checks."""
    if app.websocket_enabled:
        return HeadDeadlineWebSocketProtocol
    return HeadDeadlineHttpProtocol
