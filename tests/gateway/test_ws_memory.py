"""Memory per relayed socket stays bounded whatever the client reads (WS_MAX_BUFFERED).

A gateway of its own with WS_MAX_BUFFERED = 1 MiB in front of the test upstream, whose
`/ws_ep/flood` sends as fast as the gateway takes. The gateway's memory is read from
/proc (VmRSS of its main process and its worker processes).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.ws_proxy import LARGEST_MESSAGE
from tests.gateway.conftest import BasicStack, start_gateway, wait_until
from tests.support import ServiceProcess

MAX_BUFFERED = 1024 * 1024
# The relay holds at most MAX_BUFFERED unsent bytes, plus the few copies a message in
# flight has (frame, text, encoded frame): a bound that does not grow with the flood.
RSS_GROWTH_BOUND = 12 * MAX_BUFFERED
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


def upstream_closes(stack: BasicStack) -> list[dict[str, object]]:
    return list(httpx.get(stack.todo.url + "/_control/closes").json())


async def warm_up(gateway: ServiceProcess) -> None:
    """One ordinary relayed socket, so the baseline includes what any first socket costs."""
    async with await open_flood(gateway, "size=1000&count=50") as ws:
        for _ in range(50):
            await ws.recv()


async def test_a_client_that_never_reads_is_closed_with_1013_and_memory_stays_flat(
    basic_stack: BasicStack, gateway: ServiceProcess
) -> None:
    assert gateway.proc is not None
    await warm_up(gateway)
    before = process_tree_rss(gateway.proc.pid)
    ws = await open_flood(gateway, "size=262144")  # 256 KiB messages, forever
    try:
        peak = await peak_rss_while(gateway, 2.0)  # the client reads nothing meanwhile
        code = await close_code_after_reading_all(ws)
    finally:
        await ws.close()
    assert code == 1013
    assert peak - before < RSS_GROWTH_BOUND, f"grew {(peak - before) >> 20} MiB"
    wait_until(
        lambda: {"code": 1001, "reason": "client too slow"} in upstream_closes(basic_stack),
        what="the upstream to be closed with 1001",
    )


async def test_a_message_over_the_largest_relayed_is_refused_not_buffered(
    gateway: ServiceProcess,
) -> None:
    assert gateway.proc is not None
    await warm_up(gateway)
    before = process_tree_rss(gateway.proc.pid)
    ws = await open_flood(gateway, f"size={LARGEST_MESSAGE + 1}")
    try:
        peak = await peak_rss_while(gateway, 1.5)
        code = await close_code_after_reading_all(ws)
    finally:
        await ws.close()
    assert code == 1013
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
