"""What a page's WebSockets carried, as Chromium saw it (Playwright's `websocket` events).

Chromium reports every frame, including frames the page's own code then ignores, so a
test can check what really went over the wire.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Page, WebSocket


def _parse(payload: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except ValueError:
        return {"unparsed": str(payload)}
    return message if isinstance(message, dict) else {"unparsed": message}


@dataclass
class WatchedSocket:
    url: str
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def received_of(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == type_]

    def sent_of(self, action: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("action") == action]


class SocketWatch:
    """Every WebSocket `page` opens from now on, in order, with its frames both ways."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WatchedSocket] = []
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws: WebSocket) -> None:
        watched = WatchedSocket(ws.url)
        self.sockets.append(watched)
        ws.on("framesent", lambda payload: watched.sent.append(_parse(payload)))
        ws.on("framereceived", lambda payload: watched.received.append(_parse(payload)))
        ws.on("close", lambda _: watched.closed.set())

    @property
    def synced(self) -> list[WatchedSocket]:
        """The sockets that got as far as their first message (not refused at the gateway)."""
        return [s for s in self.sockets if s.received]

    def sent(self, action: str) -> list[dict[str, Any]]:
        return [m for s in self.sockets for m in s.sent_of(action)]

    def received(self, type_: str) -> list[dict[str, Any]]:
        return [m for s in self.sockets for m in s.received_of(type_)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until `predicate()` is true (polled; frames arrive through Playwright)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the frames the test waited for never came")
            await asyncio.sleep(0.05)
