"""A second client of the same user: a WebSocket the test opens itself, not through a page."""

from __future__ import annotations

import asyncio
import itertools
import json
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

_ids = itertools.count(1)


class DirectSocket:
    """`async with DirectSocket(url, token) as ws: await ws.request({...})`."""

    def __init__(self, ws_base_url: str, access_token: str) -> None:
        self.url = f"{ws_base_url}/ws_ep/ws?token={access_token}"
        self.conn: ClientConnection | None = None
        self.first: dict[str, Any] = {}

    async def __aenter__(self) -> DirectSocket:
        self.conn = await asyncio.wait_for(connect(self.url), 10)
        self.first = await self.receive()
        assert self.first["type"] == "todos_list", self.first
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.conn is not None
        await self.conn.close()

    async def receive(self) -> dict[str, Any]:
        assert self.conn is not None
        return dict(json.loads(await asyncio.wait_for(self.conn.recv(), 10)))

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one action; return the reply carrying its request_id (skipping broadcasts)."""
        assert self.conn is not None
        request_id = f"test-{next(_ids)}"
        await self.conn.send(json.dumps({**message, "request_id": request_id}))
        while True:
            reply = await self.receive()
            if reply.get("request_id") == request_id:
                return reply
