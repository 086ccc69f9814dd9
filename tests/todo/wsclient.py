"""A small WebSocket client for the tests: JSON in, schema-checked JSON out, bounded waits."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any
from urllib.parse import quote

import jwt
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from shared.settings import JwtSettings
from shared.tokens import AccessTokenCodec
from tests.support import ServiceProcess
from todo_ws_service.messages import server_message_adapter

TIMEOUT = 10.0


def new_user_id() -> int:
    return secrets.randbelow(2**40) + 1


class Tokens:
    """Access tokens signed like the auth service's, plus the bad kinds."""

    def __init__(self, jwt_secret: str) -> None:
        self.secret = jwt_secret
        self.codec = AccessTokenCodec(JwtSettings(jwt_secret=jwt_secret))  # type: ignore[arg-type]

    def valid(self, user_id: int, ttl: int = 300) -> str:
        return self.codec.issue(user_id, f"user{user_id}", ttl).token

    def custom(self, key: str | None = None, algorithm: str = "HS256", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": "42",
            "username": "someone",
            "iss": "todo-auth",
            "aud": "todo-api",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, key if key is not None else self.secret, algorithm=algorithm)

    @staticmethod
    def alg_none(user_id: int = 42) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iss": "todo-auth", "aud": "todo-api", "exp": now + 300}
        return jwt.encode(claims, None, algorithm="none")


class Socket:
    """One open connection to the todo service."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            message = json.dumps(message)
        await self.ws.send(message)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next server message, checked against the schema module."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, str), "every server frame must be a text frame"
        message = orjson.loads(raw)
        server_message_adapter.validate_python(message)
        return message

    async def request(self, message: dict[str, Any] | str) -> dict[str, Any]:
        await self.send(message)
        return await self.recv()

    async def expect_nothing_pending(self) -> None:
        """Nothing was queued for this socket: the reply to a fresh request comes next."""
        marker = f"probe-{secrets.token_hex(4)}"
        reply = await self.request({"action": "get_all_todos", "request_id": marker})
        assert reply["type"] == "todos_list" and reply.get("request_id") == marker, reply

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the server closes; the close code it sent."""

        async def drain() -> None:
            try:
                async for _ in self.ws:
                    pass
            except ConnectionClosed:
                pass

        await asyncio.wait_for(drain(), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


async def open_socket(
    server: ServiceProcess, token: str | None, *, since: object = None, **kwargs: Any
) -> Socket:
    """A socket to `/ws_ep/ws`; `since` (protocol 1.1) is sent as `&since=...`, percent-encoded."""
    query = [] if token is None else [f"token={token}"]
    if since is not None:
        query.append(f"since={quote(str(since), safe='')}")
    url = f"{server.ws_url}/ws_ep/ws" + ("?" + "&".join(query) if query else "")
    ws = await asyncio.wait_for(connect(url, open_timeout=TIMEOUT, **kwargs), TIMEOUT)
    return Socket(ws)


async def open_user_socket(server: ServiceProcess, tokens: Tokens, user_id: int) -> Socket:
    """A socket for `user_id`, past its first message (the list, returned in `.initial`)."""
    sock = await open_socket(server, tokens.valid(user_id))
    first = await sock.recv()
    assert first["type"] == "todos_list", first
    sock.initial = first  # type: ignore[attr-defined]
    return sock
