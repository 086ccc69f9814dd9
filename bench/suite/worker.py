"""One load generator process: `python -m bench.suite.worker`, driven by `clients.py`.

It reads one JSON command a line on stdin (`{"cmd": name, "args": {...}}`) and writes one
JSON answer a line on stdout. Sockets it opened stay open between commands (the swarm
scenarios hold thousands), and its event loop keeps running while it waits for the next
command, so held sockets answer pings. Times are on the monotonic clock, which every
process of the machine shares: the parent names the measured window in absolute terms.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.suite.loadgen import (
    CrudSocket,
    FanoutGroup,
    FanoutSocket,
    Socket,
    Window,
    connect,
    delete_frame,
    seed_frame,
)
from bench.suite.processes import raise_fd_limit

Json = dict[str, Any]
CREATE_FANOUT = b'{"action":"create_todo","payload":{"title":"fan-out"},"request_id":"f"}'


@dataclass
class SwarmEntry:
    url: str
    rev: int | None = None
    socket: Socket | None = None


@dataclass
class State:
    crud: list[CrudSocket] = field(default_factory=list)
    swarm: list[SwarmEntry] = field(default_factory=list)


async def _at(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


def _cpu_at(moment: float, into: list[float]) -> None:
    """Record this process's CPU seconds at `moment` (in the background)."""

    def sample() -> None:
        into.append(time.process_time())

    asyncio.get_running_loop().call_later(max(0.0, moment - time.monotonic()), sample)


# ------------------------------------------------------------------ CRUD closed loop


async def crud_prepare(state: State, urls: list[str], echo: bool, seed: int) -> Json:
    """Open one socket per URL; on the todo service, read the list and create `seed` todos."""

    async def one(url: str) -> CrudSocket:
        sock = await connect(lambda: CrudSocket(echo), url)
        if not echo:
            await sock.receive()  # todos_list
            for n in range(seed):
                sock.send(seed_frame(n))
                await sock.receive()
        return sock

    state.crud = list(await asyncio.gather(*(one(url) for url in urls)))
    return {"sockets": len(state.crud)}


async def crud_run(state: State, start: float, stop: float) -> Json:
    """Run every socket's closed loop from now (warm-up) until `stop`; measure from `start`."""
    window = Window(start, stop)
    cpu: list[float] = []
    _cpu_at(start, cpu)
    _cpu_at(stop, cpu)
    loops = [sock.start_loop(window) for sock in state.crud]
    results = await asyncio.wait_for(
        asyncio.gather(*loops, return_exceptions=True), stop - time.monotonic() + 30
    )
    await _at(stop + 0.01)
    failed = sum(1 for r in results if isinstance(r, BaseException))
    return {
        **window.summary(),
        "failed_sockets": failed,
        "cpu": cpu[-1] - cpu[0] if len(cpu) == 2 else 0.0,
    }


async def crud_close(state: State) -> Json:
    for sock in state.crud:
        sock.close()
    await asyncio.gather(*(s.disconnected for s in state.crud), return_exceptions=True)
    state.crud = []
    return {}


# ------------------------------------------------------------------ connect + first message


async def connect_loop(
    state: State,
    urls: list[str],
    concurrency: int,
    start: float,
    stop: float,
    greet: str | None = None,
) -> Json:
    """`concurrency` loops of: connect, read the first message, close; measured in a window.

    With `greet` (the echo server, which sends nothing first), the client sends it once
    connected and the first message must be that text coming back."""
    hello = greet.encode() if greet is not None else None
    latencies: list[float] = []
    errors = Counter[str]()
    cpu: list[float] = []
    _cpu_at(start, cpu)
    _cpu_at(stop, cpu)

    async def loop(index: int) -> None:
        n = index
        while time.monotonic() < stop:
            url = urls[n % len(urls)]
            n += concurrency
            began = time.monotonic()
            try:
                sock = await connect(Socket, url)
                if hello is not None:
                    sock.send(hello)
                first = await sock.receive(10)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            done = time.monotonic()
            if hello is not None:
                expected = first == hello
            else:
                expected = first.startswith(b'{"type":"todos_list"') or b'"todos_list"' in first
            if not expected:
                errors["unexpected first message"] += 1
            elif start <= done <= stop:  # completed in the window (slow ones count too)
                latencies.append(done - began)
            sock.close()

    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    await _at(stop + 0.01)
    return {
        "latencies": latencies,
        "errors": dict(errors),
        "cpu": cpu[-1] - cpu[0] if len(cpu) == 2 else 0.0,
    }


# ------------------------------------------------------------------ the swarm (idle, resume)


async def _open_entry(
    entry: SwarmEntry, since: bool, deadline: float, began: float, tally: Json
) -> float | None:
    """Connect `entry` (retrying) until its first message arrives; seconds after `began`."""
    attempt = 0
    while True:
        attempt += 1
        url = entry.url
        if since and entry.rev is not None:
            url += f"&since={entry.rev}"
        sock: Socket | None = None
        try:
            sock = await connect(Socket, url, within=30)
            payload = await sock.receive(30)
            message = orjson.loads(payload)
            kind = message.get("type")
            if kind not in ("todos_list", "todos_delta"):
                raise ConnectionError(f"first message {kind} {message.get('code')}")
        except Exception as exc:
            tally["errors"][type(exc).__name__ + " " + str(exc)[:60]] += 1
            if sock is not None:
                sock.close()
            if time.monotonic() > deadline:
                return None
            tally["retries"] += 1
            await asyncio.sleep(min(1.0, 0.05 * attempt) * random.uniform(0.5, 1.5))
            continue
        entry.socket = sock
        entry.rev = message.get("rev")
        tally["types"][kind] += 1
        tally["bytes"] += len(payload)
        return time.monotonic() - began


async def swarm_open(
    state: State,
    urls: list[str] | None,
    since: bool,
    concurrency: int,
    within: float,
    began: float,
) -> Json:
    """Open the swarm (new `urls`, or the held ones again: `since` resumes from each socket's
    last `rev`); at most `concurrency` handshakes in flight. Returns when every socket has
    its first message (or `within` seconds), with per-socket times after `began`."""
    if urls is not None:
        state.swarm = [SwarmEntry(url) for url in urls]
    gate = asyncio.Semaphore(concurrency)
    tally: Json = {"errors": Counter[str](), "types": Counter[str](), "retries": 0, "bytes": 0}
    deadline = time.monotonic() + within
    cpu_before = time.process_time()

    async def one(entry: SwarmEntry) -> float | None:
        async with gate:
            return await _open_entry(entry, since, deadline, began, tally)

    times = await asyncio.gather(*(one(entry) for entry in state.swarm))
    done = [t for t in times if t is not None]
    return {
        "times": done,
        "failed": len(times) - len(done),
        "errors": dict(tally["errors"].most_common(5)),
        "types": dict(tally["types"]),
        "retries": tally["retries"],
        "bytes": tally["bytes"],
        "cpu": time.process_time() - cpu_before,
    }


async def swarm_wait_closed(state: State, within: float) -> Json:
    """Wait until every held socket is closed (the service behind went away)."""
    futures = [e.socket.disconnected for e in state.swarm if e.socket is not None]
    done, _ = await asyncio.wait(futures, timeout=within) if futures else (set(), set())
    codes = Counter(str(f.result()) for f in done)
    return {"closed": len(done), "open": len(futures) - len(done), "codes": dict(codes)}


async def swarm_ping(state: State, concurrency: int, within: float) -> Json:
    """Every held socket asks for what changed since its revision and waits for the answer."""
    gate = asyncio.Semaphore(concurrency)
    answered = 0
    errors = Counter[str]()

    async def one(entry: SwarmEntry) -> None:
        nonlocal answered
        if entry.socket is None:
            errors["not open"] += 1
            return
        async with gate:
            try:
                message = b'{"action":"sync","since":%d,"request_id":"p"}' % (entry.rev or 0)
                entry.socket.send(message)
                while True:
                    reply = orjson.loads(await entry.socket.receive(within))
                    if reply.get("request_id") == "p":
                        break
            except Exception as exc:
                errors[type(exc).__name__] += 1
                return
            if reply.get("type") in ("todos_delta", "todos_list"):
                answered += 1
            else:
                errors[str(reply.get("code"))] += 1

    began = time.monotonic()
    await asyncio.gather(*(one(entry) for entry in state.swarm))
    return {"answered": answered, "errors": dict(errors), "seconds": time.monotonic() - began}


async def swarm_close(state: State) -> Json:
    sockets = [e.socket for e in state.swarm if e.socket is not None]
    for sock in sockets:
        sock.close()
    await asyncio.wait([s.disconnected for s in sockets], timeout=10) if sockets else None
    state.swarm = []
    return {}


# ------------------------------------------------------------------ fan-out


async def fanout(state: State, url: str, k: int, writes: int) -> Json:
    """K sockets of one user; socket 0 writes (create, then delete it, ...), one write at a
    time; per write: until its own reply (ack) and until the last of the K got the event."""
    group = FanoutGroup(k)
    sockets = [await connect(lambda: FanoutSocket(group), url) for _ in range(k)]
    try:
        for sock in sockets:
            await sock.receive()  # todos_list
            sock.started = True
        ack: list[float] = []
        last: list[float] = []
        writer = sockets[0]
        for n in range(writes):
            done = group.expect()
            began = time.monotonic()
            writer.send(CREATE_FANOUT if n % 2 == 0 else delete_frame(group.last_id))
            await asyncio.wait_for(done, 10)
            last.append(group.last_at - began)
            ack.append(group.ack_at - began)
        return {"last": last, "ack": ack}
    finally:
        for sock in sockets:
            sock.close()
        await asyncio.wait([s.disconnected for s in sockets], timeout=5)


# ------------------------------------------------------------------ logins and /healthz


async def logins(
    state: State,
    base_url: str,
    users: list[str],
    password: str,
    concurrency: int,
    start: float,
    stop: float,
) -> Json:
    """`concurrency` closed loops of POST /auth/login (JSON body) until `stop`."""
    import httpx

    outcomes = Counter[str]()
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def loop(index: int) -> None:
            n = index
            while time.monotonic() < stop:
                body = {"username": users[n % len(users)], "password": password}
                n += 1
                began = time.monotonic()
                try:
                    response = await client.post("/auth/login", json=body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                done = time.monotonic()
                if start <= done <= stop:
                    outcomes[status] += 1
                    if status == "200":
                        latencies.append(done - began)
                if status == "503":
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return {"outcomes": dict(outcomes), "latencies": latencies}


async def probe(state: State, url: str, interval: float, start: float, stop: float) -> Json:
    """GET `url` every `interval` seconds (one at a time) from `start` until `stop`."""
    import httpx

    latencies: list[float] = []
    failures = 0
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(url)  # the connection, kept alive
        await _at(start)
        tick = start
        while tick < stop:
            began = time.monotonic()
            try:
                ok = (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.monotonic() - began)
            else:
                failures += 1
            tick += interval
            await _at(tick)
    return {"latencies": latencies, "failures": failures}


async def hello(state: State) -> Json:
    """Answered once the process is up (imports done): windows are timed after this."""
    return {}


HANDLERS: dict[str, Callable[..., Awaitable[Json]]] = {
    "hello": hello,
    "crud_prepare": crud_prepare,
    "crud_run": crud_run,
    "crud_close": crud_close,
    "connect_loop": connect_loop,
    "swarm_open": swarm_open,
    "swarm_wait_closed": swarm_wait_closed,
    "swarm_ping": swarm_ping,
    "swarm_close": swarm_close,
    "fanout": fanout,
    "logins": logins,
    "probe": probe,
}


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    state = State()
    while line := await reader.readline():
        command = orjson.loads(line)
        try:
            answer = await HANDLERS[command["cmd"]](state, **command["args"])
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        sys.stdout.buffer.flush()


def main() -> None:
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
