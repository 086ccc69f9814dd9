"""Scenario 2: connect + auth + first list.

Closed loops of: open a socket with a token, wait for the first message (the token is
verified, the user's list of 10 todos read and sent), close; directly, through the gateway
and through nginx. Connections a second and the p50/p99 of that whole sequence.

The reference: the same loop on the bare Sanic echo server (which sends nothing first:
the client sends a short text once connected and waits for it to come back), directly,
through nginx and through the gateway. That is what a connection costs before the
service does anything of its own: Sanic's HTTP and WebSocket handshake, one message, the
close.
"""

from __future__ import annotations

import time

from bench.suite.clients import Clients
from bench.suite.nginx import Nginx
from bench.suite.processes import servers
from bench.suite.profile import Profile
from bench.suite.results import Section, Table, ms, percentile
from bench.suite.scenarios.common import Context, cpu_at, socket_urls, start_seeded_todo
from bench.suite.seed import mint_tokens

KEY = "connect"
TITLE = "Connect + auth + first list"
USERS = 256
TODOS = 10
CONCURRENCY = 8  # connect loops per load generator process
GREETING = '{"hello":"echo"}'  # what the echo paths send and wait for


def steps(profile: Profile, keys: set[str]) -> int:
    return 7


async def run_sections(ctx: Context, keys: set[str]) -> list[Section]:
    import asyncio

    profile, display = ctx.profile, ctx.display
    section = Section(KEY, TITLE, __doc__ or "")
    table = Table(
        f"{profile.clients} load generator processes x {CONCURRENCY} connect loops,"
        f" {USERS} users of {TODOS} todos",
        ["path", "connections/s", "p50 ms", "p99 ms", "server CPU us/connection", "errors"],
    )
    with servers(ctx.tmp) as started:
        display.step("seeding, starting echo, todo, gateways, nginx")
        ids = ctx.users.take(USERS)
        echo = started.echo(name="echo-connect")
        echo_gateway = started.gateway(echo.url, name="gateway-connect-echo")
        todo, _ = start_seeded_todo(started, "todo-connect", ids, TODOS)
        gateway = started.gateway(todo.url, name="gateway-connect")
        nginx = Nginx(ctx.tmp, [f"127.0.0.1:{echo.port}", f"127.0.0.1:{todo.port}"])
        started.track(nginx)
        nginx.start()
        assert echo.proc and echo_gateway.proc and todo.proc and gateway.proc
        tokens = mint_tokens(started.secret, ids)
        paths: list[tuple[str, str, list[int], str | None]] = [
            ("echo", echo.url, [echo.proc.pid], GREETING),
            ("echo via nginx", nginx.url(0), [nginx.pgid, echo.proc.pid], GREETING),
            (
                "echo via gateway",
                echo_gateway.url,
                [echo_gateway.proc.pid, echo.proc.pid],
                GREETING,
            ),
            ("todo", todo.url, [todo.proc.pid], None),
            ("todo via gateway", gateway.url, [gateway.proc.pid, todo.proc.pid], None),
            ("todo via nginx", nginx.url(1), [nginx.pgid, todo.proc.pid], None),
        ]
        display.advance()
        async with Clients(profile.clients, ctx.client_log) as clients:
            for name, base, pgids, greet in paths:
                display.step(name)
                urls = socket_urls(base, tokens, USERS)
                start = time.monotonic() + profile.warmup
                stop = start + profile.connect_seconds
                answers, cpu0, cpu1 = await asyncio.gather(
                    clients.each(
                        "connect_loop",
                        [
                            {
                                "urls": u,
                                "concurrency": CONCURRENCY,
                                "start": start,
                                "stop": stop,
                                "greet": greet,
                            }
                            for u in clients.split(urls)
                        ],
                    ),
                    cpu_at(start, pgids),
                    cpu_at(stop, pgids),
                )
                latencies = [x for a in answers for x in a["latencies"]]
                errors = sum(sum(a["errors"].values()) for a in answers)
                count = len(latencies)
                table.rows.append(
                    [
                        name,
                        f"{count / (stop - start):,.0f}",
                        ms(percentile(latencies, 0.5)),
                        ms(percentile(latencies, 0.99)),
                        f"{(cpu1 - cpu0) / count * 1e6:,.0f}" if count else "-",
                        str(errors),
                    ]
                )
                display.log(f"  connect {name}: " + " | ".join(table.rows[-1][1:]))
                display.advance()
    section.tables = [table]
    return [section]
