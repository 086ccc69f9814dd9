"""Scenarios 3 and 5: thousands of sockets through the gateway (the swarm).

Idle: one socket per user (each user has a list of 50 todos), all through the gateway; the
resident memory of the gateway and of the todo service is read before and after, and the
difference divided by the sockets; then every socket asks for what changed since its
revision (`sync`) and must be answered.

Resume: the todo service is restarted (SIGTERM, started again on the same file); every
socket is closed by it and reconnects through the gateway, first resuming with
`since=<its rev>` (a `todos_delta`, empty here), then, after a second restart, without
(a full `todos_list` of 50 todos). The time is taken from the moment the restarted service
answers `/healthz` until the last socket has its first message. The clients keep at most
96 handshakes in flight in all (a reconnect storm of 9,000 at once only overflows the
listen backlog, 100 in Sanic) and retry with a short backoff.
"""

from __future__ import annotations

import asyncio
import math
import time

from bench.suite.clients import Clients, Json
from bench.suite.processes import ServiceProcess, servers
from bench.suite.procstat import group_cpu_seconds, group_rss_kib
from bench.suite.profile import Profile
from bench.suite.results import Section, Table, at_least, at_most, percentile
from bench.suite.scenarios.common import Context, socket_urls, start_seeded_todo
from bench.suite.seed import mint_tokens

KEYS = ["idle", "resume"]
KEY = "swarm"
TITLE = "Thousands of sockets through the gateway: idle memory, resume after a restart"
IN_FLIGHT_TOTAL = 96  # handshakes in flight over all load generator processes (backlog 100)
SOCKETS_PER_CLIENT = 3000
SETTLE = 2.0


def steps(profile: Profile, keys: set[str]) -> int:
    return 3 + (1 if "idle" in keys else 0) + (2 if "resume" in keys else 0)


def _merge(answers: list[Json]) -> Json:
    times = [t for a in answers for t in a["times"]]
    errors: dict[str, int] = {}
    types: dict[str, int] = {}
    for a in answers:
        for k, v in a["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in a["types"].items():
            types[k] = types.get(k, 0) + v
    return {
        "times": times,
        "failed": sum(a["failed"] for a in answers),
        "retries": sum(a["retries"] for a in answers),
        "bytes": sum(a["bytes"] for a in answers),
        "cpu": sum(a["cpu"] for a in answers),
        "errors": errors,
        "types": types,
    }


async def _restart(todo: ServiceProcess, clients: Clients) -> tuple[float, Json]:
    """Stop the todo service, wait for every socket to see its close, start it again.
    Returns the moment it answered /healthz again and the close codes seen."""
    stopping = asyncio.create_task(asyncio.to_thread(todo.stop))
    closed = await clients.all("swarm_wait_closed", within=60.0)
    await stopping
    await asyncio.to_thread(todo.start, True, 60.0)
    codes: dict[str, int] = {}
    for answer in closed:
        for code, count in answer["codes"].items():
            codes[code] = codes.get(code, 0) + count
    codes["still open"] = sum(a["open"] for a in closed)
    return time.monotonic(), codes


async def run_sections(ctx: Context, keys: set[str]) -> list[Section]:
    profile, display = ctx.profile, ctx.display
    count, per_user = profile.swarm_sockets, profile.swarm_todos
    sections: list[Section] = []
    _, idle_text, resume_text = (__doc__ or "\n\n\n\n").split("\n\n", 2)
    idle = Section("idle", f"{count:,} idle sockets through the gateway", idle_text)
    resume = Section("resume", f"Resume with `since` vs full lists ({count:,} sockets)", "")
    with servers(ctx.tmp) as started:
        display.step(f"seeding {count:,} users x {per_user} todos")
        ids = ctx.users.take(count)
        todo, seed_seconds = start_seeded_todo(started, "todo-swarm", ids, per_user)
        gateway = started.gateway(todo.url, name="gateway-swarm")
        assert todo.proc and gateway.proc
        urls = socket_urls(gateway.url, mint_tokens(started.secret, ids), count)
        display.advance()
        workers = max(1, math.ceil(count / SOCKETS_PER_CLIENT))
        in_flight = max(1, IN_FLIGHT_TOTAL // workers)
        async with Clients(workers, ctx.client_log) as clients:
            shares = clients.split(urls)
            await asyncio.sleep(SETTLE)
            rss_before = (group_rss_kib(gateway.proc.pid), group_rss_kib(todo.proc.pid))
            display.step(f"opening {count:,} sockets via gateway")
            began = time.monotonic()
            opened = _merge(
                await clients.each(
                    "swarm_open",
                    [
                        {
                            "urls": share,
                            "since": False,
                            "concurrency": in_flight,
                            "within": 300.0,
                            "began": began,
                        }
                        for share in shares
                    ],
                )
            )
            open_seconds = max(opened["times"], default=0.0)
            display.log(
                f"  opened {len(opened['times']):,} sockets in {open_seconds:.1f} s"
                f" ({opened['failed']} failed, {opened['retries']} retries)"
            )
            display.advance()
            await asyncio.sleep(SETTLE)
            rss_after = (group_rss_kib(gateway.proc.pid), group_rss_kib(todo.proc.pid))
            open_count = len(opened["times"])
            if "idle" in keys:
                display.step("every socket answers (sync)")
                pinged = await clients.all("swarm_ping", concurrency=200, within=60.0)
                answered = sum(a["answered"] for a in pinged)
                ping_seconds = max(a["seconds"] for a in pinged)
                display.advance()
                per_socket = [
                    (after - before) * 1024 / max(1, open_count) / 1000
                    for before, after in zip(rss_before, rss_after, strict=True)
                ]
                display.log(
                    f"  idle: gateway {per_socket[0]:.1f} KB/socket, todo {per_socket[1]:.1f}"
                    f" KB/socket; {answered:,}/{count:,} answered"
                )
                idle.tables = [
                    Table(
                        f"{open_count:,} sockets open through the gateway, {per_user} todos"
                        f" per user (opened in {open_seconds:.1f} s, {in_flight} handshakes in"
                        f" flight per client process, {workers} processes)",
                        ["process", "RSS before MiB", "RSS after MiB", "per socket KB"],
                        [
                            [name, f"{b / 1024:.1f}", f"{a / 1024:.1f}", f"{p:.1f}"]
                            for name, b, a, p in zip(
                                ("gateway", "todo service"),
                                rss_before,
                                rss_after,
                                per_socket,
                                strict=True,
                            )
                        ],
                        [
                            "RSS: the sum over the process group (Sanic's main process and"
                            " worker); KB = 1,000 bytes.",
                            f"Afterwards {answered:,} of {count:,} sockets answered a `sync`"
                            f" within {ping_seconds:.1f} s.",
                        ],
                    )
                ]
                idle.targets = [
                    at_most("gateway memory per idle tunnelled socket", per_socket[0], 20, "KB"),
                    at_most("todo service memory per idle socket", per_socket[1], 40, "KB"),
                    at_least(
                        f"idle sockets answering afterwards (of {count:,})", answered / count, 1.0
                    ),
                ]
                sections.append(idle)
            if "resume" in keys:
                rows: dict[str, Json] = {}
                for mode in ("since", "full"):
                    display.step(f"restart todo, reconnect ({mode})")
                    ready, codes = await _restart(todo, clients)
                    cpu0 = group_cpu_seconds(gateway.proc.pid) + group_cpu_seconds(todo.proc.pid)
                    result = _merge(
                        await clients.all(
                            "swarm_open",
                            urls=None,
                            since=mode == "since",
                            concurrency=in_flight,
                            within=300.0,
                            began=ready,
                        )
                    )
                    cpu1 = group_cpu_seconds(gateway.proc.pid) + group_cpu_seconds(todo.proc.pid)
                    result["server_cpu"] = cpu1 - cpu0
                    result["codes"] = codes
                    rows[mode] = result
                    display.log(
                        f"  resume ({mode}): all {len(result['times']):,} in sync after"
                        f" {max(result['times'], default=0):.2f} s; {result['types']}"
                    )
                    display.advance()
                resume.description = resume_text
                resume.tables = [_resume_table(rows, count, per_user, seed_seconds)]
                since_t = max(rows["since"]["times"], default=0.0)
                full_t = max(rows["full"]["times"], default=0.0)
                complete = all(not r["failed"] for r in rows.values())
                resume.targets = [
                    at_least(
                        "resume with `since` vs full lists, time until all in sync",
                        full_t / since_t if since_t and complete else 0.0,
                        2.0,
                        "x",
                    )
                ]
                sections.append(resume)
            await clients.all("swarm_close")
    return sections


def _resume_table(rows: Json, count: int, per_user: int, seed_seconds: float) -> Table:
    table = Table(
        f"{count:,} sockets reconnecting through the gateway after a todo service restart",
        [
            "mode",
            "all in sync s",
            "p50 s",
            "p99 s",
            "first messages",
            "MB received",
            "retries",
            "failed",
            "server CPU s",
            "client CPU s",
            "closes seen",
        ],
    )
    for mode, r in rows.items():
        times = r["times"]
        table.rows.append(
            [
                "since=rev" if mode == "since" else "full list",
                f"{max(times, default=0.0):.2f}",
                f"{percentile(times, 0.5):.2f}",
                f"{percentile(times, 0.99):.2f}",
                ", ".join(f"{k} {v:,}" for k, v in r["types"].items()),
                f"{r['bytes'] / 1e6:.1f}",
                str(r["retries"]),
                str(r["failed"]),
                f"{r['server_cpu']:.1f}",
                f"{r['cpu']:.1f}",
                ", ".join(f"{k}: {v}" for k, v in r["codes"].items()),
            ]
        )
    since_t = max(rows["since"]["times"], default=0.0)
    full_t = max(rows["full"]["times"], default=0.0)
    if since_t:
        table.notes.append(f"Full lists took {full_t / since_t:.2f}x as long as resuming.")
    table.notes.append(
        f"{count:,} users x {per_user} todos written straight into SQLite in"
        f" {seed_seconds:.1f} s; time counted from the restarted service's first /healthz."
    )
    errors = {k: v for r in rows.values() for k, v in r["errors"].items()}
    if errors:
        table.notes.append(f"Errors on the way (then retried): {errors}")
    return table
