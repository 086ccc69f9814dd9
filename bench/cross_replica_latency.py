"""Cross-replica delivery latency: a change made on replica A, seen by a socket on replica B.

Starts two todo replicas on a fresh PostgreSQL database with this machine's Redis, opens
one socket of each of N users on both replicas, and has every A socket create and delete
todos one at a time (closed loop). For each change it measures

- ack: send on A -> the reply on A (the asker's round trip, commit included);
- fan-out: send on A -> the copy on B (commit + Redis publish + delivery on B);

and prints p50/p90/p99 of both.

    .venv/bin/python bench/cross_replica_latency.py --users 8 --changes 200
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.settings import JwtSettings  # noqa: E402
from shared.tokens import AccessTokenCodec  # noqa: E402
from tests.support import (  # noqa: E402
    REDIS_URL,
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

    return (
        f"p50 {at(0.50):6.2f} ms  p90 {at(0.90):6.2f} ms  p99 {at(0.99):6.2f} ms"
        f"  mean {statistics.fmean(ordered) * 1000:6.2f} ms  (n={len(ordered)})"
    )


async def timed_recv(ws: ClientConnection, started: float) -> tuple[bytes | str, float]:
    while True:
        frame = await ws.recv()
        if not str(frame).startswith('{"type":"todos_list"'):  # a resync is not a change
            return frame, time.perf_counter() - started


async def user_loop(
    a: ClientConnection, b: ClientConnection, changes: int, acks: list[float], fans: list[float]
) -> None:
    todo_id = None
    for n in range(changes):
        if todo_id is None:
            frame = {"action": "create_todo", "payload": {"title": f"t{n}"}}
        else:
            frame = {"action": "delete_todo", "todo_id": todo_id}
        started = time.perf_counter()
        await a.send(orjson.dumps(frame).decode())
        (reply, ack), (copy, fan) = await asyncio.gather(
            timed_recv(a, started), timed_recv(b, started)
        )
        acks.append(ack)
        fans.append(fan)
        message = orjson.loads(reply)
        assert orjson.loads(copy)["type"] == message["type"], (message, copy)
        todo_id = message["data"]["id"] if message["type"] == "todo_created" else None


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--changes", type=int, default=200, help="changes per user")
    args = parser.parse_args()

    secret = secrets.token_urlsafe(48)
    codec = AccessTokenCodec(JwtSettings(jwt_secret=secret))  # type: ignore[arg-type]
    db_url = await asyncio.to_thread(create_postgres_database, "bench_fanout")
    env = {
        "JWT_SECRET": secret,
        "TODO_DB_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_CHANNEL_PREFIX": f"bench-{secrets.token_hex(4)}",
        "WS_RATE_LIMIT": "0",
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory() as tmp:
        replicas = [
            ServiceProcess("todo_ws_service", env, Path(tmp), name=f"r{i}").start()
            for i in range(2)
        ]
        try:
            acks: list[float] = []
            fans: list[float] = []
            sockets = []
            for user in range(1, args.users + 1):
                token = codec.issue(user, f"bench{user}", 3600).token
                a = await connect(f"{replicas[0].ws_url}/ws_ep/ws?token={token}")
                b = await connect(f"{replicas[1].ws_url}/ws_ep/ws?token={token}")
                await a.recv()
                await b.recv()  # the first todos_list on each
                sockets += [a, b]
            pairs = list(zip(sockets[::2], sockets[1::2], strict=True))
            await asyncio.gather(*(user_loop(a, b, 20, [], []) for a, b in pairs))  # warm-up
            await asyncio.gather(*(user_loop(a, b, args.changes, acks, fans) for a, b in pairs))
            for ws in sockets:
                await ws.close()
        finally:
            for replica in replicas:
                replica.stop()
            await asyncio.to_thread(drop_postgres_database, db_url)
    print(f"{args.users} users x {args.changes} changes, 2 replicas, PostgreSQL + Redis")
    print(f"    ack (A -> A): {percentiles(acks)}")
    print(f"fan-out (A -> B): {percentiles(fans)}")


if __name__ == "__main__":
    asyncio.run(main())
