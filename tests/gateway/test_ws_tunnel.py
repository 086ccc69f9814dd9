"""The byte tunnel's own promises: what reaches the upstream, Sanic's timeouts, refusals
passed on, pipelined bytes, and the gateway's shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from tests.gateway import rawhttp
from tests.gateway.conftest import BasicStack, start_gateway, start_upstream, wait_until
from tests.support import ServiceProcess

TIMEOUT = 10
UPGRADE = [
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Version: 13",
]


def upgrade_head(port: int, target: bytes, *extra: bytes) -> bytes:
    lines = [b"GET %s HTTP/1.1" % target, b"Host: 127.0.0.1:%d" % port, *UPGRADE, *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_until(sock: socket.socket, marker: bytes, timeout: float = TIMEOUT) -> bytes:
    """Bytes read from `sock` until `marker` is among them (the connection may stay open)."""
    sock.settimeout(timeout)
    data = bytearray()
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed before {marker!r}: {bytes(data)!r}")
        data += chunk
    return bytes(data)


def test_the_upgrade_reaches_the_upstream_with_the_contracts_headers(
    basic_stack: BasicStack,
) -> None:
    # The test upstream answers an upgrade of /ws_ep/echo with 200 and the request it got:
    # the gateway passes that answer on, and it shows what the upstream was sent.
    response = rawhttp.request(
        basic_stack.gateway.port,
        b"/ws_ep/echo?token=abc&x=1",
        headers=[
            *UPGRADE,
            b"X-Forwarded-For: 10.9.8.7",
            b"X-Forwarded-Host: spoofed.test",
            b"X-Request-ID: tunnel-test.1",
            b"Keep-Alive: timeout=5",
            b"Origin: http://example.test",
        ],
    )
    assert response.status == 200
    echo = response.json()
    assert echo["path"] == "/ws_ep/echo"
    assert echo["query"] == "token=abc&x=1"
    headers = dict(echo["headers"])
    assert headers["upgrade"] == "websocket"
    assert headers["connection"] == "Upgrade"
    assert headers["sec-websocket-key"] == "dGhlIHNhbXBsZSBub25jZQ=="
    assert headers["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{basic_stack.gateway.port}"
    assert headers["x-request-id"] == "tunnel-test.1"
    assert headers["origin"] == "http://example.test"
    assert headers["host"] == f"127.0.0.1:{basic_stack.todo.port}"
    assert "keep-alive" not in headers
    assert response.headers["x-request-id"] == "tunnel-test.1"


@pytest.mark.parametrize("status", [401, 403, 404, 503])
async def test_a_refused_upgrade_is_passed_on_to_the_client(
    basic_stack: BasicStack, status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{basic_stack.ws_url}/ws_ep/refuse?status={status}", open_timeout=TIMEOUT, proxy=None
        )
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body) == {"name": "todo-1", "refused": True}
    assert response.headers["x-upstream"] == "todo-1"
    # The replica answered: it is not marked down for it.
    ready = httpx.get(basic_stack.url + "/readyz").json()
    assert ready["upstreams"]["todo"][0]["status"] == "up"


def test_frames_sent_with_the_upgrade_request_reach_the_upstream(
    basic_stack: BasicStack,
) -> None:
    port = basic_stack.gateway.port
    frame = Frame(Opcode.TEXT, b"sent before the 101").serialize(mask=True, extensions=[])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(upgrade_head(port, b"/ws_ep/ws") + frame)  # one write, one read
        data = read_until(sock, b"sent before the 101")
    assert data.startswith(b"HTTP/1.1 101 ")
    assert data.index(b'"hello": "todo-1"') < data.index(b"sent before the 101")


@pytest.fixture
def impatient_gateway(basic_stack: BasicStack, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A gateway whose Sanic timeouts (and head deadline) are all one second."""
    gateway = start_gateway(
        [basic_stack.auth],
        [basic_stack.todo],
        tmp_path,
        SANIC_REQUEST_TIMEOUT="1",
        SANIC_RESPONSE_TIMEOUT="1",
        SANIC_KEEP_ALIVE_TIMEOUT="1",
        HTTP_HEADER_TIMEOUT="1",
    )
    try:
        yield gateway
    finally:
        gateway.stop()


async def test_a_tunnel_idle_longer_than_sanics_timeouts_stays_open(
    impatient_gateway: ServiceProcess,
) -> None:
    # The timeouts are in force: a connection that sends nothing is closed...
    with socket.create_connection(("127.0.0.1", impatient_gateway.port), timeout=TIMEOUT) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < 5
    # ...but a tunnel, once open, is no longer Sanic's to time out.
    async with connect(f"{impatient_gateway.ws_url}/ws_ep/ws", proxy=None) as ws:
        assert json.loads(await ws.recv())["hello"] == "todo-1"
        await asyncio.sleep(3.5)
        await ws.send("still there")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "still there"


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """An upstream and a gateway that a test may stop."""
    upstream = start_upstream("todo-own", tmp_path)
    gateway = start_gateway([upstream], [upstream], tmp_path)
    try:
        yield upstream, gateway
    finally:
        gateway.stop()
        upstream.stop()


async def test_a_gateway_shutdown_closes_the_tunnel_with_1001_on_both_sides(
    own_stack: tuple[ServiceProcess, ServiceProcess],
) -> None:
    upstream, gateway = own_stack
    ws = await connect(f"{gateway.ws_url}/ws_ep/ws", proxy=None)
    assert json.loads(await ws.recv())["hello"] == "todo-own"
    stopping = asyncio.create_task(asyncio.to_thread(gateway.stop))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.protocol.close_rcvd is not None
    assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (
        1001,
        "gateway shutting down",
    )
    assert await stopping == 0  # the gateway stopped cleanly, and without waiting long
    # The client's answering close frame went through the tunnel to the upstream.
    wait_until(
        lambda: (
            {"code": 1001, "reason": "gateway shutting down"}
            in httpx.get(upstream.url + "/_control/closes").json()
        ),
        what="the upstream to see the client's 1001",
    )


async def test_after_frames_of_every_length_encoding_a_lost_upstream_still_gives_1014(
    own_stack: tuple[ServiceProcess, ServiceProcess],
) -> None:
    # 1014 can only be written between two frames: the tunnel must have followed every
    # frame the upstream sent, whatever its length encoding and however TCP cut it.
    upstream, gateway = own_stack
    async with connect(f"{gateway.ws_url}/ws_ep/ws", proxy=None, max_size=None) as ws:
        assert json.loads(await ws.recv())["hello"] == "todo-own"
        for size in (0, 1, 124, 125, 126, 127, 128, 129, 1000, 65535, 65536 - 1):
            message = "m" * size
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == message
        await asyncio.to_thread(upstream.kill)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 1014
