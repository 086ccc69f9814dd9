"""What the scenarios share: their context, and one closed-loop CRUD run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bench.suite.clients import Clients
from bench.suite.processes import Servers, ServiceProcess
from bench.suite.procstat import group_cpu_seconds
from bench.suite.profile import Profile
from bench.suite.progress import Display
from bench.suite.results import LoadRun, percentile
from bench.suite.seed import UserIds, mint_tokens, seed_todos

SEED_TODOS = 5  # each CRUD socket's user starts with 5 todos, as in bench/ws_hot_path.py


@dataclass
class Context:
    profile: Profile
    tmp: Path
    display: Display
    users: UserIds

    @property
    def client_log(self) -> Path:
        return self.tmp / "load-generator.log"


@dataclass
class Route:
    """Where a series' sockets go: base URL, whether it is the echo server, and the
    process groups (proxy and backend) whose CPU the run is charged."""

    series: str
    base: str  # http://127.0.0.1:PORT
    echo: bool
    pgids: list[int]


async def cpu_at(moment: float, pgids: list[int]) -> float:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))
    return sum(group_cpu_seconds(pgid) for pgid in pgids)


def socket_urls(base: str, tokens: list[str] | None, count: int) -> list[str]:
    root = "ws" + base.removeprefix("http") + "/ws_ep/ws"
    if tokens is None:
        return [root] * count
    return [f"{root}?token={token}" for token in tokens]


async def crud_run(
    ctx: Context, clients: Clients, path: Route, sockets: int, secret: str, workers: int
) -> LoadRun:
    """`sockets` sockets (one user each) in a closed loop of the CRUD cycle through `path`,
    split over `workers` load generator processes; warm-up, then the measured window."""
    profile = ctx.profile
    tokens = None if path.echo else mint_tokens(secret, ctx.users.take(sockets))
    urls = socket_urls(path.base, tokens, sockets)
    active = clients.workers[: max(1, min(workers, sockets))]
    shares = [urls[i :: len(active)] for i in range(len(active))]
    await asyncio.gather(
        *(
            w.call("crud_prepare", urls=share, echo=path.echo, seed=SEED_TODOS)
            for w, share in zip(active, shares, strict=True)
        )
    )
    start = time.monotonic() + profile.warmup
    stop = start + profile.seconds
    try:
        answers, cpu_start, cpu_stop = await asyncio.gather(
            asyncio.gather(*(w.call("crud_run", start=start, stop=stop) for w in active)),
            cpu_at(start, path.pgids),
            cpu_at(stop, path.pgids),
        )
    finally:
        await asyncio.gather(*(w.call("crud_close") for w in active), return_exceptions=True)
    latencies = [x for answer in answers for x in answer["latencies"]]
    return LoadRun(
        series=path.series,
        sockets=sockets,
        messages=len(latencies),
        seconds=stop - start,
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        errors=sum(a["errors"] for a in answers) + sum(a["failed_sockets"] for a in answers),
        server_cpu=cpu_stop - cpu_start,
        client_cpu=sum(a["cpu"] for a in answers),
    )


def run_line(run: LoadRun) -> str:
    return (
        f"{run.series:>18} {run.sockets:>4} sockets: {run.rate:8.0f} msgs/s"
        f"  p50 {run.p50 * 1000:6.2f} ms  p99 {run.p99 * 1000:6.2f} ms"
        f"  server {run.server_us_per_message:5.0f} us/msg"
        f"  client {run.client_share:4.0%} core" + (f"  errors {run.errors}" if run.errors else "")
    )


def start_seeded_todo(
    started: Servers, name: str, user_ids: list[int], per_user: int, **extra: str
) -> tuple[ServiceProcess, float]:
    """The todo service on a fresh file whose users already have `per_user` todos each:
    started once (its migrations make the tables), stopped, seeded, started again.
    Returns the service and the seconds the seeding took."""
    todo = started.todo(name, True, **extra)
    todo.stop()
    began = time.monotonic()
    seed_todos(started.tmp / f"{name}.sqlite3", user_ids, per_user)
    seeded = time.monotonic() - began
    todo.start(timeout=60)
    return todo, seeded
