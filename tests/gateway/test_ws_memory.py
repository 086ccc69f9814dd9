"""Memory per tunnelled socket stays bounded whatever either side reads (WS_MAX_BUFFERED).

A gateway of its own with WS_MAX_BUFFERED = 1 MiB (the tunnel's flow-control high-water
mark) in front of the test upstream, whose `/ws_ep/flood` sends as fast as the gateway
takes. The gateway's memory is read from /proc (VmRSS of its main process and its worker
processes).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import BasicStack, start_gateway
from tests.support import ServiceProcess

MAX_BUFFERED = 1024 * 1024
# The tunnel holds at most MAX_BUFFERED unsent bytes per direction, plus one read (256
# KiB) and the allocator's slack: a bound that does not grow with the flood.
RSS_GROWTH_BOUND = 6 * MAX_BUFFERED
TIMEOUT = 15


def process_tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and its direct children (Sanic's workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if int(entry.name) != pid and parent != pid:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


@pytest.fixture(scope="module")
def gateway(
    basic_stack: BasicStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    process = start_gateway(
        [basic_stack.auth],
        [basic_stack.todo],
        tmp_path_factory.mktemp("gateway-memory"),
        WS_MAX_BUFFERED=str(MAX_BUFFERED),
    )
    try:
        yield process
    finally:
        process.stop()


async def open_flood(gateway: ServiceProcess, query: str) -> ClientConnection:
    # max_queue=1: the client library itself reads ahead at most a frame or two.
    return await connect(
        f"{gateway.ws_url}/ws_ep/flood?{query}",
        open_timeout=TIMEOUT,
        proxy=None,
        max_size=None,
        max_queue=1,
    )


async def peak_rss_while(gateway: ServiceProcess, seconds: float) -> int:
    assert gateway.proc is not None
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, process_tree_rss(gateway.proc.pid))
        await asyncio.sleep(0.05)
    return peak


async def close_code_after_reading_all(ws: ClientConnection) -> int:
    """Read what is left, then the close frame; its code (never a bare 1006)."""
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.protocol.close_rcvd is not None, "closed without a close frame (1006)"
    return ws.protocol.close_rcvd.code


async def warm_up(gateway: ServiceProcess) -> None:
    """One ordinary relayed socket, so the baseline includes what any first socket costs."""
    async with await open_flood(gateway, "size=1000&count=50") as ws:
        for _ in range(50):
            await ws.recv()


async def test_a_client_that_never_reads_pauses_the_upstream_and_memory_stays_flat(
    gateway: ServiceProcess,
) -> None:
    assert gateway.proc is not None
    await warm_up(gateway)
    before = process_tree_rss(gateway.proc.pid)
    ws = await open_flood(gateway, "size=262144")  # 256 KiB messages, forever
    try:
        peak = await peak_rss_while(gateway, 2.0)  # the client reads nothing meanwhile
        # Flow control held the upstream back instead of dropping anyone: the socket is
        # still open and what was sent arrives whole once the client reads.
        received = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(40)]
    finally:
        await ws.close()
    assert [len(m) for m in received] == [262144] * 40
    assert peak - before < RSS_GROWTH_BOUND, f"grew {(peak - before) >> 20} MiB"


async def test_a_message_far_larger_than_the_bound_streams_through_in_bounded_memory(
    gateway: ServiceProcess,
) -> None:
    # The tunnel does not hold messages, only bytes: a message of 16 MiB (16 times the
    # bound) reaches a client that reads it slowly, and the gateway holds at most the bound.
    assert gateway.proc is not None
    await warm_up(gateway)
    before = process_tree_rss(gateway.proc.pid)
    size = 16 * MAX_BUFFERED
    ws = await open_flood(gateway, f"size={size}&count=1")
    try:
        peak = await peak_rss_while(gateway, 1.5)  # not read yet
        received = await asyncio.wait_for(ws.recv(), TIMEOUT)
        code = await close_code_after_reading_all(ws)
    finally:
        await ws.close()
    assert len(received) == size
    assert code == 1000
    assert peak - before < RSS_GROWTH_BOUND, f"grew {(peak - before) >> 20} MiB"


async def test_one_message_larger_than_the_limit_reaches_a_client_that_reads(
    gateway: ServiceProcess,
) -> None:
    # A big user's whole list is one message, larger than WS_MAX_BUFFERED: it goes
    # through when nothing else waits for the client.
    size = 3 * MAX_BUFFERED
    async with await open_flood(gateway, f"size={size}&count=1") as ws:
        received = await asyncio.wait_for(ws.recv(), TIMEOUT)
        code = await close_code_after_reading_all(ws)
    assert len(received) == size
    assert code == 1000


async def test_a_client_that_keeps_up_gets_every_message_then_the_upstreams_close(
    gateway: ServiceProcess,
) -> None:
    # 10 MiB in all, well over WS_MAX_BUFFERED, at 12 MiB/s: never much of it unsent.
    count, size = 40, 256 * 1024
    query = f"size={size}&count={count}&interval=0.02"
    async with await open_flood(gateway, query) as ws:
        received = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(count)]
        code = await close_code_after_reading_all(ws)
    assert [len(m) for m in received] == [size] * count
    assert code == 1000


async def test_an_upstream_that_never_reads_does_not_make_the_gateway_grow(
    gateway: ServiceProcess,
) -> None:
    assert gateway.proc is not None
    await warm_up(gateway)
    before = process_tree_rss(gateway.proc.pid)
    message = json.dumps({"padding": "y" * 60_000})  # under the upstream's 64 KiB frames
    ws = await connect(f"{gateway.ws_url}/ws_ep/deaf?seconds=3", open_timeout=TIMEOUT, proxy=None)

    async def send_forever() -> None:
        while True:
            await ws.send(message)  # waits once every buffer on the way is full

    sender = asyncio.create_task(send_forever())
    peak = await peak_rss_while(gateway, 2.0)
    sender.cancel()
    ws.transport.abort()  # its close frame could not get through either
    assert peak - before < RSS_GROWTH_BOUND, f"grew {(peak - before) >> 20} MiB"


IDLE_SOCKETS = 400
IDLE_BYTES_PER_SOCKET = 20 * 1024  # the target of issue 11


async def test_an_idle_tunnelled_socket_costs_the_gateway_under_20_kb(
    gateway: ServiceProcess,
) -> None:
    assert gateway.proc is not None
    url = f"{gateway.ws_url}/ws_ep/ws"
    warm = [await connect(url, open_timeout=TIMEOUT, proxy=None) for _ in range(50)]
    sockets: list[ClientConnection] = []
    try:
        await asyncio.sleep(0.5)
        before = process_tree_rss(gateway.proc.pid)
        for _ in range(IDLE_SOCKETS):
            ws = await connect(url, open_timeout=TIMEOUT, proxy=None)
            await asyncio.wait_for(ws.recv(), TIMEOUT)  # the upstream's hello: tunnel open
            sockets.append(ws)
        await asyncio.sleep(0.5)
        after = process_tree_rss(gateway.proc.pid)
        # Every one of them still answers.
        for ws in sockets[:: IDLE_SOCKETS // 20]:
            await ws.send("ping")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ping"
    finally:
        await asyncio.gather(*(ws.close() for ws in warm + sockets))
    per_socket = (after - before) / IDLE_SOCKETS
    print(f"gateway: {per_socket / 1024:.1f} KiB per idle tunnelled socket")
    assert per_socket < IDLE_BYTES_PER_SOCKET, f"{per_socket:.0f} bytes per socket"
