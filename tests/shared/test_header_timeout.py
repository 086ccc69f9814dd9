"""HTTP_HEADER_TIMEOUT: a request head must arrive whole within it, however it trickles.

Sanic's own REQUEST_TIMEOUT restarts on every byte: without the deadline, a client sending
one header byte a second keeps its connection (and a file descriptor) for ever.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.shared.conftest import HEADER_TIMEOUT, SERVICES, service_of
from tests.shared.rawhttp import read_until_closed, server_hung_up, trickle
from tests.stack import LocalStack
from tests.support import ServiceProcess
from tests.todo.wsclient import Tokens, new_user_id

ENDLESS_HEAD = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
# Well past the deadline, well short of Sanic's 60 s REQUEST_TIMEOUT.
GIVE_UP_AFTER = HEADER_TIMEOUT + 6


def connect_raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def assert_cut_at_deadline(sock: socket.socket, started: float) -> None:
    """The server answered 408 and closed, about HEADER_TIMEOUT after `started`."""
    reply = read_until_closed(sock, quiet=2.0, started=started)
    assert reply.closed, f"still open after {reply.elapsed:.1f}s"
    assert reply.status == 408, reply.data
    assert json.loads(reply.data.split(b"\r\n\r\n", 1)[1])["code"] == "request_timeout"
    assert HEADER_TIMEOUT - 0.3 < reply.elapsed < HEADER_TIMEOUT + 1.5, reply.elapsed


@pytest.mark.parametrize("service", SERVICES)
def test_a_head_trickled_one_byte_a_second_is_cut_at_the_deadline(
    stack: LocalStack, service: str
) -> None:
    with connect_raw(service_of(stack, service).port) as sock:
        started = time.monotonic()
        sent, took = trickle(sock, ENDLESS_HEAD, interval=1.0, give_up_after=GIVE_UP_AFTER)
        assert took < GIVE_UP_AFTER, f"the server kept the connection for {took:.0f}s"
        assert_cut_at_deadline(sock, started)
        assert sent <= HEADER_TIMEOUT + 2


@pytest.mark.parametrize("service", SERVICES)
def test_a_connection_that_sends_nothing_is_closed(stack: LocalStack, service: str) -> None:
    with connect_raw(service_of(stack, service).port) as sock:
        started = time.monotonic()
        reply = read_until_closed(sock, quiet=GIVE_UP_AFTER, started=started)
        assert reply.closed and reply.data == b""  # nothing to answer: just closed
        assert reply.elapsed < HEADER_TIMEOUT + 1.5


def test_each_head_on_a_kept_alive_connection_has_its_own_deadline(stack: LocalStack) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with connect_raw(stack.gateway.port) as sock:
        started = time.monotonic()
        sock.sendall(request)
        assert server_hung_up(sock, 2.0)  # the answer is there
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(HEADER_TIMEOUT * 0.75)  # idle between requests: not a head's time
        for third in (request[:10], request[10:25], request[25:]):  # 1.5 s for this head
            sock.sendall(third)
            time.sleep(HEADER_TIMEOUT * 0.25)
        assert time.monotonic() - started > HEADER_TIMEOUT * 1.5  # older than one deadline
        assert server_hung_up(sock, 2.0)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "the second head was cut early"
        second_started = time.monotonic()
        trickle(sock, ENDLESS_HEAD, interval=0.5, give_up_after=GIVE_UP_AFTER)
        assert_cut_at_deadline(sock, second_started)


async def exchange_after_idling(url: str, token: str) -> dict[str, object]:
    async with connect(f"{url}/ws_ep/ws?token={token}", open_timeout=5) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "todos_list"
        await asyncio.sleep(HEADER_TIMEOUT * 1.5)  # the socket outlives its head's deadline
        await ws.send(json.dumps({"action": "create_todo", "payload": {"title": "still here"}}))
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))


@pytest.mark.parametrize("service", ["gateway", "todo"])
async def test_a_websocket_is_not_cut_by_the_deadline(
    stack: LocalStack, service: str, jwt_secret: str
) -> None:
    token = Tokens(jwt_secret).valid(new_user_id())
    reply = await exchange_after_idling(service_of(stack, service).ws_url, token)
    assert reply["type"] == "todo_created", reply


def test_a_trickled_websocket_upgrade_head_is_cut_too(stack: LocalStack) -> None:
    head = (
        b"GET /ws_ep/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nX-Slow: " + b"a" * 1000
    )
    with connect_raw(stack.gateway.port) as sock:
        started = time.monotonic()
        trickle(sock, head, interval=0.2, give_up_after=GIVE_UP_AFTER)
        assert_cut_at_deadline(sock, started)


def test_the_deadline_holds_under_the_sanic_cli_too(tmp_path: Path) -> None:
    """`sanic gateway.app:create_app --factory` gets the same connection protocol."""
    env = {"HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    with ServiceProcess("gateway", env, tmp_path, sanic_cli=True) as gateway:
        with connect_raw(gateway.port) as sock:
            started = time.monotonic()
            trickle(sock, ENDLESS_HEAD, interval=0.5, give_up_after=GIVE_UP_AFTER)
            assert_cut_at_deadline(sock, started)
