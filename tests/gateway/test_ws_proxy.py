"""WebSockets through the gateway to a real upstream: frames and close codes, both ways."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import BasicStack, wait_until

TIMEOUT = 10


async def open_socket(stack: BasicStack, query: str = "", **kwargs: Any) -> ClientConnection:
    return await connect(
        f"{stack.ws_url}/ws_ep/ws{query}", open_timeout=TIMEOUT, proxy=None, **kwargs
    )


async def hello(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await ws.recv(decode=True)))


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close; its close frame (never a bare 1006)."""
    with pytest.raises(ConnectionClosed):
        while True:
            await ws.recv()
    assert ws.protocol.close_rcvd is not None, "closed without a close frame (1006)"
    return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


def upstream_closes(stack: BasicStack) -> list[dict[str, Any]]:
    return list(httpx.get(stack.todo.url + "/_control/closes").json())


async def test_path_query_and_forwarding_headers_reach_the_upstream(
    basic_stack: BasicStack,
) -> None:
    async with await open_socket(
        basic_stack, "?token=abc.def&x=1", origin="http://example.test"
    ) as ws:
        first = await hello(ws)
    assert first["hello"] == "todo-1"
    assert first["path"] == "/ws_ep/ws"
    assert first["query"] == "token=abc.def&x=1"
    assert first["forwarded_for"] == "127.0.0.1"
    assert first["remote_addr"] == "127.0.0.1"
    assert first["origin"] == "http://example.test"


async def test_text_and_binary_frames_are_relayed_as_they_are(basic_stack: BasicStack) -> None:
    async with await open_socket(basic_stack) as ws:
        await hello(ws)
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xffbinary")
        echoed = await ws.recv()
        assert isinstance(echoed, bytes)
        assert echoed == b"\x00\xffbinary"
        big = "x" * 60_000  # under the upstream's 64 KiB limit
        await ws.send(big)
        assert await ws.recv() == big


@pytest.mark.parametrize(
    ("code", "reason"), [(1008, "auth_failed"), (4001, "custom reason"), (1000, "")]
)
async def test_the_upstreams_close_code_reaches_the_client(
    basic_stack: BasicStack, code: int, reason: str
) -> None:
    async with await open_socket(basic_stack) as ws:
        await hello(ws)
        await ws.send(f"close {code} {reason}".rstrip())
        assert await closed_with(ws) == (code, reason)


async def test_an_upstream_closing_at_once_still_lets_its_first_message_through(
    basic_stack: BasicStack,
) -> None:
    async with await open_socket(basic_stack, "?close=1008&reason=token_expired") as ws:
        assert (await hello(ws))["hello"] == "todo-1"
        assert await closed_with(ws) == (1008, "token_expired")


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4002, "tab closed"), (1001, "bye")])
async def test_the_clients_close_code_reaches_the_upstream(
    basic_stack: BasicStack, code: int, reason: str
) -> None:
    marker = secrets.token_hex(4)
    reason = f"{reason} {marker}".strip()
    async with await open_socket(basic_stack) as ws:
        await hello(ws)
        await ws.close(code, reason)
    wait_until(
        lambda: {"code": code, "reason": reason} in upstream_closes(basic_stack),
        what=f"the upstream to see close {code}",
    )


async def test_a_frame_over_the_services_limit_closes_with_1009_from_the_service(
    basic_stack: BasicStack,
) -> None:
    async with await open_socket(basic_stack) as ws:
        await hello(ws)
        await ws.send("x" * 100_000)  # over the upstream's 64 KiB, under the gateway's 1 MiB
        code, _ = await closed_with(ws)
    assert code == 1009


async def test_the_token_in_the_query_is_not_logged(basic_stack: BasicStack) -> None:
    token = "secret" + secrets.token_hex(16)
    async with await open_socket(basic_stack, f"?token={token}") as ws:
        await hello(ws)
    wait_until(lambda: "token=[redacted]" in basic_stack.gateway.logs(), what="access log")
    assert token not in basic_stack.gateway.logs()
