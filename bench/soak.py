"""Soak: a few hundred sockets through the gateway for minutes; no error, memory flat.

Starts the auth service, the todo service (SQLite) and the gateway as processes, as
`tests/stack.py` does; registers and logs in users through the gateway; then keeps
`--sockets` WebSockets open through the gateway (`--sockets-per-user` of each user, so
every change also fans out to the user's other sockets), each sending a write or a read
about `--rate` times a second: creates, updates, deletes (keyed or not) and full lists.
Every `--sample-every` seconds it records the resident memory of each service's process
group. At the end it prints the errors (any error reply, unexpected close, or a reply
slower than 10 s: there must be none), the round trips and the memory over time.

    .venv/bin/python bench/soak.py                        # 300 sockets, 10 minutes
    .venv/bin/python bench/soak.py --minutes 0.5 --sockets 50 --sample-every 5
    .venv/bin/python bench/soak.py --record               # also into bench/README.md

Exit status: 0 when there was no error and memory stayed flat, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.stack import LocalStack, start_stack  # noqa: E402
from tests.support import new_jwt_secret  # noqa: E402

REPLY_TIMEOUT = 10.0
MAX_TODOS_PER_USER = 20  # past it, sockets delete rather than create: the lists stay small
WARM_UP_SAMPLES = 1  # memory growth is measured from the sample after these
FLAT_MIB, FLAT_SHARE = 8.0, 0.05  # "flat": grew by at most 8 MiB or 5 %, whichever is more
README = REPO / "bench" / "README.md"
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sockets", type=int, default=300)
    parser.add_argument("--sockets-per-user", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1.0, help="messages/s per socket")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--record", action="store_true", help="write into bench/README.md")
    return parser.parse_args(argv)


@dataclass
class Tally:
    """What all sockets saw."""

    sent: int = 0
    replies: int = 0
    broadcasts: int = 0  # copies of the user's changes made on their other sockets
    errors: list[str] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)

    def error(self, what: str) -> None:
        if len(self.errors) < 1000:
            self.errors.append(what)


@dataclass
class UserState:
    """The todo ids a user's sockets know of (shared by the user's sockets)."""

    todo_ids: set[int] = field(default_factory=set)


# ------------------------------------------------------------------ the stack


def start_services(log_dir: Path, minutes: float) -> LocalStack:
    return start_stack(
        log_dir,
        {"JWT_SECRET": new_jwt_secret()},
        auth_env={
            # One client address registers every user: no per-address limit here.
            "REGISTER_MAX_PER_ADDRESS": "0",
            "ACCESS_TOKEN_TTL": str(int(minutes * 60) + 600),
        },
        every_env={"LOG_LEVEL": "WARNING"},
    )


async def sign_up(base_url: str, users: int) -> list[str]:
    """Register and log in `users` users through the gateway; their access tokens."""
    tokens = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for n in range(users):
            credentials = {"username": f"soak{n}_{secrets.token_hex(3)}", "password": "soak-pass-1"}
            (await client.post("/auth/register", json=credentials)).raise_for_status()
            login = await client.post("/auth/login", json=credentials)
            login.raise_for_status()
            tokens.append(login.json()["access_token"])
    return tokens


# ------------------------------------------------------------------ one socket


def next_message(n: int, user: UserState) -> dict[str, object]:
    """A mix of writes and reads; each user's list stays at most MAX_TODOS_PER_USER long."""
    known = sorted(user.todo_ids)
    kind = n % 5
    if known and (kind == 4 or len(known) >= MAX_TODOS_PER_USER):
        return {"action": "delete_todo", "todo_id": random.choice(known)}
    if known and kind in (1, 3):
        payload = {"title": f"edit {n}", "completed": n % 2 == 0}
        return {"action": "update_todo", "todo_id": random.choice(known), "payload": payload}
    if kind == 2:
        return {"action": "get_all_todos"}
    message: dict[str, object] = {"action": "create_todo", "payload": {"title": f"soak {n}"}}
    if n % 3 == 0:
        message["idempotency_key"] = secrets.token_hex(8)
    return message


def settle(reply: dict[str, object], user: UserState) -> None:
    """Keep the user's known ids in step with a reply or a broadcast."""
    data = reply.get("data")
    if reply["type"] == "todo_created" and isinstance(data, dict):
        user.todo_ids.add(int(data["id"]))
    elif reply["type"] == "todo_deleted" and isinstance(data, dict):
        user.todo_ids.discard(int(data["todo_id"]))


async def await_reply(
    ws: ClientConnection, request_id: str, user: UserState, tally: Tally
) -> dict[str, object]:
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT))
        settle(message, user)
        if message.get("request_id") == request_id:
            return dict(message)
        tally.broadcasts += 1


def is_expected_miss(reply: dict[str, object]) -> bool:
    """Another socket of the user deleted the todo first: a race of the load, not an error."""
    return reply.get("type") == "error" and reply.get("code") == "not_found"


async def socket_loop(
    ws_url: str, token: str, user: UserState, deadline: float, rate: float, tally: Tally
) -> None:
    ids = itertools.count(1)
    try:
        async with connect(f"{ws_url}/ws_ep/ws?token={token}", open_timeout=30) as ws:
            first = orjson.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT))
            if first.get("type") != "todos_list":
                tally.error(f"first message {first}")
                return
            user.todo_ids.update(todo["id"] for todo in first["data"])
            await asyncio.sleep(random.uniform(0, 1 / rate))  # spread the sockets out
            while time.monotonic() < deadline:
                n = next(ids)
                request_id = f"r{n}"
                started = time.perf_counter()
                await ws.send(orjson.dumps({**next_message(n, user), "request_id": request_id}))
                tally.sent += 1
                reply = await await_reply(ws, request_id, user, tally)
                tally.round_trips.append(time.perf_counter() - started)
                tally.replies += 1
                if reply["type"] == "error" and not is_expected_miss(reply):
                    tally.error(f"error reply {reply}")
                await asyncio.sleep(random.expovariate(rate))
    except TimeoutError:
        tally.error("no reply within 10 s")
    except ConnectionClosed as exc:
        tally.error(f"socket closed: {exc}")
    except OSError as exc:
        tally.error(f"connection failed: {exc}")


# ------------------------------------------------------------------ memory


def group_rss_mib(process_group: int) -> float:
    """Resident memory of every process in `process_group` (Sanic's main + workers)."""
    total_kib = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != process_group:  # pgrp is the 5th field of stat
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process went away meanwhile
    return total_kib / 1024


async def sample_memory(
    stack: LocalStack, every: float, until: float, samples: list[tuple[float, dict[str, float]]]
) -> None:
    started = time.monotonic()
    services = {"auth": stack.auth, "todo": stack.todo, "gateway": stack.gateway}
    while True:
        row = {name: group_rss_mib(s.proc.pid) for name, s in services.items() if s.proc}
        samples.append((time.monotonic() - started, row))
        if time.monotonic() + every > until:
            return
        await asyncio.sleep(every)


# ------------------------------------------------------------------ report


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def growth(samples: list[tuple[float, dict[str, float]]], name: str) -> tuple[float, bool]:
    """MiB grown from the first sample after warm-up to the last, and whether that is flat."""
    base = samples[min(WARM_UP_SAMPLES, len(samples) - 1)][1][name]
    grown = samples[-1][1][name] - base
    return grown, grown <= max(FLAT_MIB, base * FLAT_SHARE)


def render(args: argparse.Namespace, tally: Tally, samples: list, seconds: float) -> str:
    names = list(samples[0][1])
    lines = [
        f"Run of {time.strftime('%Y-%m-%d %H:%M')}: {args.sockets} sockets "
        f"({args.sockets_per_user} per user) through the gateway for {args.minutes:g} min, "
        f"about {args.rate:g} message/s each; SQLite; `nproc` = {os.cpu_count()}, "
        f"load average before the run {args.load_before:.1f}.",
        "",
        f"- messages: {tally.sent} sent, {tally.replies} replies "
        f"({tally.replies / seconds:.0f}/s), {tally.broadcasts} broadcast copies received",
        f"- round trip: p50 {percentile(tally.round_trips, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(tally.round_trips, 0.99) * 1000:.1f} ms, "
        f"mean {statistics.fmean(tally.round_trips or [0]) * 1000:.1f} ms",
        f"- errors: {len(tally.errors)}",
        "",
        "| t (s) | " + " | ".join(f"{name} RSS (MiB)" for name in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for at, row in samples:
        lines.append(f"| {at:.0f} | " + " | ".join(f"{row[name]:.1f}" for name in names) + " |")
    lines.append("")
    verdicts = []
    for name in names:
        grown, flat = growth(samples, name)
        verdicts.append(f"{name} {grown:+.1f} MiB ({'flat' if flat else 'GROWING'})")
    lines.append("Memory from the sample after warm-up to the last: " + ", ".join(verdicts) + ".")
    for error in tally.errors[:10]:
        lines.append(f"- error: {error[:300]}")
    return "\n".join(lines)


def record(report: str) -> None:
    """Replace the text between the soak markers of bench/README.md with `report`."""
    text = README.read_text()
    if BEGIN not in text or END not in text:
        text += f"\n## Soak\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{BEGIN}\n{report}\n{END}{tail}")


# ------------------------------------------------------------------ main


async def soak(args: argparse.Namespace, stack: LocalStack) -> tuple[Tally, list, float]:
    users = max(1, args.sockets // args.sockets_per_user)
    tokens = await sign_up(stack.url, users)
    states = [UserState() for _ in tokens]
    tally = Tally()
    samples: list[tuple[float, dict[str, float]]] = []
    started = time.monotonic()
    deadline = started + args.minutes * 60
    sockets = [
        socket_loop(
            stack.gateway.ws_url, tokens[i % users], states[i % users], deadline, args.rate, tally
        )
        for i in range(args.sockets)
    ]
    await asyncio.gather(sample_memory(stack, args.sample_every, deadline, samples), *sockets)
    return tally, samples, time.monotonic() - started


def main() -> int:
    args = parse_args()
    args.load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        stack = start_services(Path(tmp), args.minutes)
        try:
            tally, samples, seconds = asyncio.run(soak(args, stack))
        finally:
            stack.stop()
    report = render(args, tally, samples, seconds)
    print(report)
    if args.record:
        record(report)
    flat = all(growth(samples, name)[1] for name in samples[0][1])
    return 0 if not tally.errors and flat else 1


if __name__ == "__main__":
    sys.exit(main())
