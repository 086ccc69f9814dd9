"""Scenario 1: the CRUD cycle, closed loop, against 1-256 sockets.

Series: the bare Sanic echo server, the todo service directly, through the gateway and
through nginx; and the proxy comparison on the same echo upstream: nginx in front of echo
against the gateway in front of echo. At the headline socket count every series runs
`rounds` times, interleaved, and the targets are judged on the median round.
"""

from __future__ import annotations

import statistics

from bench.suite.clients import Clients
from bench.suite.nginx import Nginx
from bench.suite.processes import servers
from bench.suite.profile import Profile
from bench.suite.results import LoadRun, Section, Table, Target, at_least, at_most
from bench.suite.scenarios.common import Context, Route, crud_run, run_line

KEY = "crud"
TITLE = "CRUD cycle: throughput and p99 against sockets"
SERIES = (
    "echo",
    "todo",
    "todo via gateway",
    "todo via nginx",
    "echo via nginx",
    "echo via gateway",
)
PLOTTED = SERIES[:4]


def steps(profile: Profile, keys: set[str]) -> int:
    return len(SERIES) * (len(profile.sockets) + profile.rounds - 1) + 1


async def run_sections(ctx: Context, keys: set[str]) -> list[Section]:
    return [await run(ctx)]


def _workers(profile: Profile, sockets: int) -> int:
    return 1 if sockets <= 16 else profile.clients


async def run(ctx: Context) -> Section:
    profile, display = ctx.profile, ctx.display
    section = Section(KEY, TITLE, __doc__ or "")
    display.step("starting echo, todo, 2 gateways, nginx")
    with servers(ctx.tmp) as started:
        echo = started.echo(wait=False)
        todo = started.todo(wait=False)
        gw_todo = started.gateway(todo.url, name="gateway-todo", wait=False)
        gw_echo = started.gateway(echo.url, name="gateway-echo", wait=False)
        for service in (echo, todo, gw_todo, gw_echo):
            service.wait_healthy(60)
        nginx = Nginx(ctx.tmp, [f"127.0.0.1:{todo.port}", f"127.0.0.1:{echo.port}"])
        started.track(nginx)
        nginx.start()
        assert echo.proc and todo.proc and gw_todo.proc and gw_echo.proc
        routes = {
            "echo": Route("echo", echo.url, True, [echo.proc.pid]),
            "todo": Route("todo", todo.url, False, [todo.proc.pid]),
            "todo via gateway": Route(
                "todo via gateway", gw_todo.url, False, [gw_todo.proc.pid, todo.proc.pid]
            ),
            "todo via nginx": Route(
                "todo via nginx", nginx.url(0), False, [nginx.pgid, todo.proc.pid]
            ),
            "echo via nginx": Route(
                "echo via nginx", nginx.url(1), True, [nginx.pgid, echo.proc.pid]
            ),
            "echo via gateway": Route(
                "echo via gateway", gw_echo.url, True, [gw_echo.proc.pid, echo.proc.pid]
            ),
        }
        display.advance()
        sweep: list[LoadRun] = []
        rounds: list[dict[str, LoadRun]] = []
        async with Clients(profile.clients, ctx.client_log) as clients:
            for sockets in profile.sockets:
                this_round: dict[str, LoadRun] = {}
                for name in SERIES:
                    display.step(f"{name}, {sockets} sockets")
                    result = await crud_run(
                        ctx,
                        clients,
                        routes[name],
                        sockets,
                        started.secret,
                        _workers(profile, sockets),
                    )
                    display.log(run_line(result))
                    display.advance()
                    sweep.append(result)
                    this_round[name] = result
                if sockets == profile.headline_sockets:
                    rounds.append(this_round)
            hs = profile.headline_sockets
            for n in range(profile.rounds - 1):
                this_round = {}
                for name in SERIES:
                    display.step(f"round {n + 2}: {name}, {hs} sockets")
                    result = await crud_run(
                        ctx, clients, routes[name], hs, started.secret, _workers(profile, hs)
                    )
                    display.log(run_line(result))
                    display.advance()
                    this_round[name] = result
                rounds.append(this_round)
    section.runs = sweep
    section.tables = tables(sweep, rounds, profile)
    section.targets = judge(rounds)
    return section


def _sockets(n: int) -> str:
    return "1 socket" if n == 1 else f"{n} sockets"


def _ratio(a: LoadRun | None, b: LoadRun | None) -> float:
    return a.rate / b.rate if a and b and b.rate else 0.0


def median_round(rounds: list[dict[str, LoadRun]], top: str, bottom: str) -> dict[str, LoadRun]:
    """The round whose `top`/`bottom` ratio is the median (its runs were back to back)."""
    ordered = sorted(rounds, key=lambda r: _ratio(r.get(top), r.get(bottom)))
    return ordered[len(ordered) // 2]


def judge(rounds: list[dict[str, LoadRun]]) -> list[Target]:
    if not rounds:
        return []
    todo_round = median_round(rounds, "todo", "echo")
    proxy_round = median_round(rounds, "echo via gateway", "echo via nginx")
    sockets = todo_round["todo"].sockets
    return [
        at_least(
            f"todo CRUD vs echo ({sockets} sockets, median of {len(rounds)} rounds)",
            _ratio(todo_round["todo"], todo_round["echo"]),
            0.50,
        ),
        at_most(
            f"todo CRUD p99 ({sockets} sockets, same round)",
            todo_round["todo"].p99 * 1000,
            5.0,
            "ms",
        ),
        at_least(
            f"gateway vs nginx on the echo upstream ({sockets} sockets, median round)",
            _ratio(proxy_round["echo via gateway"], proxy_round["echo via nginx"]),
            0.90,
        ),
    ]


def tables(sweep: list[LoadRun], rounds: list[dict[str, LoadRun]], profile: Profile) -> list[Table]:
    counts = list(profile.sockets)
    by = {(r.series, r.sockets): r for r in sweep}
    header = ["series", *(_sockets(n) for n in counts)]
    rates = Table("Messages a second (client-measured replies)", header)
    p99 = Table("p99 round trip, ms", header)
    cpu = Table("Server CPU per message, us (every process on the path)", header)
    for name in SERIES:
        runs = [by.get((name, n)) for n in counts]
        rates.rows.append([name, *(f"{r.rate:,.0f}" if r else "-" for r in runs)])
        p99.rows.append([name, *(f"{r.p99 * 1000:.2f}" if r else "-" for r in runs)])
        cpu.rows.append([name, *(f"{r.server_us_per_message:.0f}" if r else "-" for r in runs)])
    ratios = Table("Ratios per socket count", ["ratio", *(_sockets(n) for n in counts)])
    for label, top, bottom in (
        ("todo / echo", "todo", "echo"),
        ("todo via gateway / todo", "todo via gateway", "todo"),
        ("todo via nginx / todo", "todo via nginx", "todo"),
        ("todo via gateway / todo via nginx", "todo via gateway", "todo via nginx"),
        ("echo via gateway / echo via nginx", "echo via gateway", "echo via nginx"),
        ("echo via nginx / echo", "echo via nginx", "echo"),
    ):
        ratios.rows.append(
            [label, *(f"{_ratio(by.get((top, n)), by.get((bottom, n))):.0%}" for n in counts)]
        )
    client = Table(
        "Load generator CPU, share of one core (a closed loop: the client waits on the server)",
        header,
    )
    for name in SERIES:
        runs = [by.get((name, n)) for n in counts]
        client.rows.append([name, *(f"{r.client_share:.0%}" if r else "-" for r in runs)])
    errors = sum(r.errors for r in sweep)
    if errors:
        rates.notes.append(f"{errors} error replies or failed sockets in the sweep.")
    headline = Table(
        f"Rounds at {profile.headline_sockets} sockets (series interleaved within a round)",
        [
            "round",
            "echo",
            "todo",
            "todo/echo",
            "todo p99 ms",
            "nginx->echo",
            "gateway->echo",
            "gateway/nginx",
        ],
    )
    for n, r in enumerate(rounds, 1):
        headline.rows.append(
            [
                str(n),
                f"{r['echo'].rate:,.0f}",
                f"{r['todo'].rate:,.0f}",
                f"{_ratio(r['todo'], r['echo']):.0%}",
                f"{r['todo'].p99 * 1000:.2f}",
                f"{r['echo via nginx'].rate:,.0f}",
                f"{r['echo via gateway'].rate:,.0f}",
                f"{_ratio(r['echo via gateway'], r['echo via nginx']):.0%}",
            ]
        )
    if len(rounds) > 1:
        values = [_ratio(r["todo"], r["echo"]) for r in rounds]
        headline.notes.append(
            f"todo/echo spread over rounds: {min(values):.0%}-{max(values):.0%},"
            f" median {statistics.median(values):.0%}."
        )
    return [rates, p99, ratios, cpu, client, headline]
