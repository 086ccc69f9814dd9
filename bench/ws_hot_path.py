"""How the todo service's hot path compares with a bare Sanic WebSocket echo server.

Starts both as subprocesses (the todo service on a fresh SQLite file), then for each runs
16 sockets in a closed loop (send, wait for the reply, send the next) for N seconds:
create_todo, update_todo, get_all_todos (a list of 5), delete_todo, over and over; the
echo server gets the very same frames. Prints messages a second, p50/p99 latency, the
server's CPU time per message, and the todo/echo ratios.

    .venv/bin/python bench/ws_hot_path.py --seconds 10 --sockets 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.settings import JwtSettings  # noqa: E402
from shared.tokens import AccessTokenCodec  # noqa: E402
from tests.support import free_port  # noqa: E402

SEED_TODOS = 5
CREATE_FRAME = orjson.dumps(
    {"action": "create_todo", "payload": {"title": "Buy milk", "description": "2 litres"}}
    | {"request_id": "c"}
).decode()


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:>5}: {self.rate:8.0f} msgs/s  p50 {self.percentile(0.50):5.2f} ms"
            f"  p99 {self.percentile(0.99):5.2f} ms"
            f"  mean {statistics.fmean(self.latencies) * 1000:5.2f} ms"
            f"  CPU us/msg: server {self.cpu_seconds / self.messages * 1e6:5.1f}"
            f" client {self.client_cpu_seconds / self.messages * 1e6:5.1f}"
        )


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def group_cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """User+system CPU of the server's worker processes (children of its main process)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[2] is the process group, [11]/[12] utime/stime (after the "(comm)").
        if int(fields[2]) == proc.pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def closed_loop(
    url: str, echo: bool, seconds: float, latencies: list[float], counts: list[int]
) -> None:
    async with connect(url, max_size=2**20, compression=None) as ws:
        if not echo:
            await ws.recv()  # todos_list
            for i in range(SEED_TODOS):
                await ws.send(
                    orjson.dumps(
                        {"action": "create_todo", "payload": {"title": f"seed {i}"}}
                    ).decode()
                )
                await ws.recv()
        deadline = time.perf_counter() + seconds
        todo_id = 1
        while time.perf_counter() < deadline:
            for frame in cycle(todo_id):
                started = time.perf_counter()
                await ws.send(frame)
                reply = await ws.recv()
                latencies.append(time.perf_counter() - started)
                counts[0] += 1
                if not echo and frame is CREATE_FRAME:
                    todo_id = orjson.loads(reply)["data"]["id"]


def cycle(todo_id: int) -> list[str]:
    # Built once per cycle on the client; the update and delete name the todo just created.
    return [
        CREATE_FRAME,
        orjson.dumps(
            {
                "action": "update_todo",
                "todo_id": todo_id,
                "payload": {"completed": True},
                "request_id": "u",
            }
        ).decode(),
        '{"action":"get_all_todos","payload":null,"request_id":"g"}',
        orjson.dumps({"action": "delete_todo", "todo_id": todo_id, "request_id": "d"}).decode(),
    ]


async def run_load(
    name: str, urls: list[str], echo: bool, seconds: float, proc: subprocess.Popen[bytes]
) -> Result:
    latencies: list[float] = []
    counts = [0]
    # Warm up (connections, SQLite pages, the statement caches), then measure.
    await asyncio.gather(*(closed_loop(u, echo, 1.0, [], [0]) for u in urls))
    cpu_before, client_before = group_cpu_seconds(proc), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(closed_loop(u, echo, seconds, latencies, counts) for u in urls))
    elapsed = time.perf_counter() - started
    cpu = group_cpu_seconds(proc) - cpu_before
    client = time.process_time() - client_before
    return Result(name, counts[0], elapsed, latencies, cpu, client)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per run")
    parser.add_argument("--sockets", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="echo/todo pairs, alternating")
    args = parser.parse_args()

    secret = secrets.token_urlsafe(48)
    codec = AccessTokenCodec(JwtSettings(jwt_secret=secret))  # type: ignore[arg-type]
    echo_port, todo_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        echo = start(
            [sys.executable, "bench/echo_server.py", "--port", str(echo_port)], {}, echo_port
        )
        env = {
            "JWT_SECRET": secret,
            "TODO_DB_URL": f"sqlite://{tmp}/bench.sqlite3",
            "LOG_LEVEL": "WARNING",
            "WS_RATE_LIMIT": "0",  # the default 30 msgs/s per socket would be the bottleneck
        }
        todo_cmd = [sys.executable, "-m", "todo_ws_service", "--port", str(todo_port)]
        todo = start(todo_cmd, env, todo_port)
        echo_urls = [f"ws://127.0.0.1:{echo_port}/ws_ep/ws"] * args.sockets
        todo_urls = [
            f"ws://127.0.0.1:{todo_port}/ws_ep/ws?token="
            + codec.issue(1000 + i, f"bench{i}", 3600).token
            for i in range(args.sockets)
        ]
        pairs: list[tuple[Result, Result]] = []
        try:
            for _ in range(args.rounds):
                echo_result = await run_load("echo", echo_urls, True, args.seconds, echo)
                todo_result = await run_load("todo", todo_urls, False, args.seconds, todo)
                pairs.append((echo_result, todo_result))
                print(echo_result.line())
                print(todo_result.line(), flush=True)
        finally:
            stop(echo)
            stop(todo)

    # The round whose ratio is the median: echo and todo ran back to back in it.
    pairs.sort(key=lambda pair: pair[1].rate / pair[0].rate)
    echo_result, todo_result = pairs[len(pairs) // 2]
    print(f"\n{args.sockets} sockets, closed loop, {args.seconds:.0f} s a run; median round:")
    print(echo_result.line())
    print(todo_result.line())
    print(
        f"ratio todo/echo: {todo_result.rate / echo_result.rate:.0%} of the messages a second"
        f" (target >= 50%); todo p99 {todo_result.percentile(0.99):.2f} ms (target < 5 ms)"
    )
    cpu_ratio = (echo_result.cpu_seconds / echo_result.messages) / (
        todo_result.cpu_seconds / todo_result.messages
    )
    print(f"server CPU per message, echo/todo: {cpu_ratio:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
