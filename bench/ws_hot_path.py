"""How the todo service's hot path compares with a bare Sanic WebSocket echo server.

Starts both as subprocesses (the todo service on a fresh SQLite file), then for each runs
16 sockets in a closed loop (send, wait for the reply, send the next) for N seconds:
create_todo, update_todo, get_all_todos (a list of 5), delete_todo, over and over; the
echo server gets the very same frames. Prints messages a second, p50/p99 latency, the
server's CPU time per message, and the todo/echo ratios.

`--keys` adds a second todo server whose writes all carry an `idempotency_key` (protocol
1.1's exactly-once bookkeeping); `--baseline REF` adds a third, the todo service as of git
revision REF (checked out into a temporary worktree), so the cost of a change is measured
against its predecessor in the same run, round by round.

    .venv/bin/python bench/ws_hot_path.py --seconds 10 --sockets 16 --keys --baseline ffc86e1
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

from bench.suite import procstat, sampling  # noqa: E402
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


def start(
    cmd: list[str], env: dict[str, str], port: int, tree: Path = REPO
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), **env},
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
    """User+system CPU of the server's processes (its own session: the group is its pid)."""
    return procstat.group_cpu_seconds(proc.pid)


async def closed_loop(
    url: str, echo: bool, seconds: float, latencies: list[float], counts: list[int], keys: bool
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
        key_prefix = secrets.token_hex(6) if keys else None
        rounds = 0
        while time.perf_counter() < deadline:
            rounds += 1
            for frame in cycle(todo_id, key_prefix and f"{key_prefix}-{rounds}"):
                started = time.perf_counter()
                await ws.send(frame)
                reply = await ws.recv()
                latencies.append(time.perf_counter() - started)
                counts[0] += 1
                if not echo and frame.startswith(CREATE_START):
                    todo_id = orjson.loads(reply)["data"]["id"]


CREATE_START = CREATE_FRAME[:24]


def cycle(todo_id: int, key: str | None = None) -> list[str]:
    """One create/update/list/delete cycle; with `key`, each write carries its own
    idempotency key. Built once per cycle on the client; the update and delete name the
    todo created in the previous cycle (its id is read from the create's reply)."""

    def keyed(message: dict[str, object], suffix: str) -> str:
        if key is not None:
            message["idempotency_key"] = f"{key}{suffix}"
        return orjson.dumps(message).decode()

    create = CREATE_FRAME if key is None else CREATE_FRAME[:-1] + f',"idempotency_key":"{key}c"}}'
    return [
        create,
        keyed(
            {
                "action": "update_todo",
                "todo_id": todo_id,
                "payload": {"completed": True},
                "request_id": "u",
            },
            "u",
        ),
        '{"action":"get_all_todos","payload":null,"request_id":"g"}',
        keyed({"action": "delete_todo", "todo_id": todo_id, "request_id": "d"}, "d"),
    ]


@dataclass
class Target:
    """One server under load, and how the client talks to it."""

    name: str
    urls: list[str]
    proc: subprocess.Popen[bytes]
    echo: bool = False
    keys: bool = False


async def run_load(target: Target, seconds: float, profile: Path | None = None) -> Result:
    latencies: list[float] = []
    counts = [0]
    urls, echo, keys, proc = target.urls, target.echo, target.keys, target.proc
    # Warm up (connections, SQLite pages, the statement caches), then measure.
    await asyncio.gather(*(closed_loop(u, echo, 1.0, [], [0], keys) for u in urls))
    # py-spy on the server's worker during the measured window (collapsed stacks in `profile`).
    spy = None
    if profile is not None:
        spy = asyncio.create_task(sampling.sample(proc.pid, time.monotonic(), seconds, profile))
    cpu_before, client_before = group_cpu_seconds(proc), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(closed_loop(u, echo, seconds, latencies, counts, keys) for u in urls))
    elapsed = time.perf_counter() - started
    if spy is not None:
        await spy
    cpu = group_cpu_seconds(proc) - cpu_before
    client = time.process_time() - client_before
    return Result(target.name, counts[0], elapsed, latencies, cpu, client)


def baseline_tree(ref: str, into: Path) -> Path:
    """A detached worktree of `ref` (removed by `remove_tree`)."""
    tree = into / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), ref], cwd=REPO, check=True
    )
    return tree


def remove_tree(tree: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def report(name: str, result: Result, echo: Result) -> str:
    return (
        f"{name}: {result.rate / echo.rate:.0%} of echo's messages a second,"
        f" p99 {result.percentile(0.99):.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per run")
    parser.add_argument("--sockets", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every server in turn")
    parser.add_argument("--keys", action="store_true", help="also a server with keyed writes")
    parser.add_argument("--baseline", metavar="REF", help="also the todo service as of REF")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="py-spy every server's worker in the last round (DIR/<server>.txt, collapsed"
        " stacks; sampling costs the server some throughput in that round)",
    )
    args = parser.parse_args()

    secret = secrets.token_urlsafe(48)
    codec = AccessTokenCodec(JwtSettings(jwt_secret=secret))  # type: ignore[arg-type]

    def todo_urls(port: int) -> list[str]:
        return [
            f"ws://127.0.0.1:{port}/ws_ep/ws?token="
            + codec.issue(1000 + i, f"bench{i}", 3600).token
            for i in range(args.sockets)
        ]

    with tempfile.TemporaryDirectory() as tmp:
        trees = [("todo", REPO, False)]
        if args.keys:
            trees.append(("todo+key", REPO, True))
        baseline = baseline_tree(args.baseline, Path(tmp)) if args.baseline else None
        if baseline is not None:
            trees.insert(0, (f"todo@{args.baseline}", baseline, False))
        targets: list[Target] = []
        try:
            echo_port = free_port()
            echo_cmd = [sys.executable, "bench/echo_server.py", "--port", str(echo_port)]
            echo = start(echo_cmd, {}, echo_port)
            targets.append(
                Target(
                    "echo", [f"ws://127.0.0.1:{echo_port}/ws_ep/ws"] * args.sockets, echo, echo=True
                )
            )
            for index, (name, tree, keys) in enumerate(trees):
                port = free_port()
                env = {
                    "JWT_SECRET": secret,
                    "TODO_DB_URL": f"sqlite://{tmp}/bench{index}.sqlite3",
                    "LOG_LEVEL": "WARNING",
                    "WS_RATE_LIMIT": "0",  # the default 30 msgs/s per socket would be the limit
                }
                cmd = [sys.executable, "-m", "todo_ws_service", "--port", str(port)]
                targets.append(
                    Target(name, todo_urls(port), start(cmd, env, port, tree), keys=keys)
                )
            rounds: list[dict[str, Result]] = []
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
            for round_no in range(args.rounds):
                results: dict[str, Result] = {}
                for target in targets:
                    profile = None
                    if args.profile is not None and round_no == args.rounds - 1:
                        profile = args.profile / f"{target.name.replace('@', '-')}.txt"
                    results[target.name] = await run_load(target, args.seconds, profile)
                    print(results[target.name].line(), flush=True)
                rounds.append(results)
        finally:
            for target in targets:
                stop(target.proc)
            if baseline is not None:
                remove_tree(baseline)

    # The round whose todo/echo ratio is the median: its servers ran back to back.
    rounds.sort(key=lambda r: r["todo"].rate / r["echo"].rate)
    median = rounds[len(rounds) // 2]
    echo_result = median["echo"]
    print(f"\n{args.sockets} sockets, closed loop, {args.seconds:.0f} s a run; median round:")
    for result in median.values():
        print(result.line())
    for name, result in median.items():
        if name != "echo":
            print(report(name, result, echo_result))
    todo = median["todo"]
    if args.baseline:
        # Each round's servers ran back to back: compare within rounds, then take the median.
        before = f"todo@{args.baseline}"
        for name in ("todo", "todo+key") if args.keys else ("todo",):
            ratios = sorted(r[name].rate / r[before].rate for r in rounds)
            shown = ", ".join(f"{ratio:.0%}" for ratio in ratios)
            print(
                f"{name} vs {args.baseline}, round by round: {shown};"
                f" median {statistics.median(ratios):.0%} of its messages a second"
            )
    cpu_ratio = (echo_result.cpu_seconds / echo_result.messages) / (
        todo.cpu_seconds / todo.messages
    )
    print(f"server CPU per message, echo/todo: {cpu_ratio:.0%} (targets: >= 50%, p99 < 5 ms)")


if __name__ == "__main__":
    asyncio.run(main())
