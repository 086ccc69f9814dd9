"""Scenario 7: what the Prometheus metrics cost the todo service's hot path.

Two todo services, `METRICS_ENABLED=true` and `false`, take the CRUD cycle in turn at the
headline socket count (1 - messages a second with metrics / without, per round). On this
shared VM two runs of the very same code one after the other differ by up to 40 %, so a
cost of a few per cent can't be read off them: the target is judged on the profile of a
further run of the service with metrics, the share of its worker's py-spy samples that
are in metrics code (`metrics.py` of the services and `prometheus_client`), which the
machine's speed does not move. Skipped while the tree has no `METRICS_ENABLED` setting.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from bench.suite.clients import Clients
from bench.suite.processes import REPO_ROOT, servers
from bench.suite.profile import Profile
from bench.suite.results import LoadRun, Section, Table, at_most, not_measured
from bench.suite.sampling import sample, share
from bench.suite.scenarios.common import Context, Route, crud_run, run_line

KEY = "metrics"
TITLE = "Metrics cost: todo CRUD with METRICS_ENABLED=true vs false"
WANTED = "< 5 % fewer messages a second"


# Where metrics code lives: a sample with a frame from one of these is metrics' cost.
METRICS_SOURCES = ("todo_ws_service/metrics.py", "shared/metrics.py", "prometheus_client/")


def steps(profile: Profile, keys: set[str]) -> int:
    return 2 + 2 * profile.metrics_rounds


def metrics_setting_exists() -> bool:
    """Does any service of this tree read METRICS_ENABLED?"""
    for package in ("shared", "todo_ws_service", "gateway", "auth_service"):
        for source in (REPO_ROOT / package).rglob("*.py"):
            if "metrics_enabled" in source.read_text(errors="replace").lower():
                return True
    return False


async def run_sections(ctx: Context, keys: set[str]) -> list[Section]:
    profile, display = ctx.profile, ctx.display
    section = Section(KEY, TITLE, __doc__ or "")
    if not metrics_setting_exists():
        section.skipped = "this tree has no METRICS_ENABLED setting yet (no service reads it)."
        section.targets = [not_measured("metrics cost on todo CRUD", WANTED, "no METRICS_ENABLED")]
        return [section]
    sockets = profile.headline_sockets
    with servers(ctx.tmp) as started:
        display.step("starting two todo services")
        on = started.todo(name="todo-metrics-on", wait=False, METRICS_ENABLED="true")
        off = started.todo(name="todo-metrics-off", wait=False, METRICS_ENABLED="false")
        on.wait_healthy(60)
        off.wait_healthy(60)
        assert on.proc and off.proc
        async with httpx.AsyncClient(timeout=5) as http:
            exposed = (await http.get(on.url + "/metrics")).status_code
            hidden = (await http.get(off.url + "/metrics")).status_code
        display.advance()
        routes = [
            Route("metrics on", on.url, False, [on.proc.pid]),
            Route("metrics off", off.url, False, [off.proc.pid]),
        ]
        rounds: list[dict[str, LoadRun]] = []
        async with Clients(1, ctx.client_log) as clients:
            for n in range(profile.metrics_rounds):
                this_round = {}
                # Alternate which goes first: the second run of a round inherits a warmer box.
                for route in routes if n % 2 == 0 else routes[::-1]:
                    display.step(f"round {n + 1}: {route.series}")
                    result = await crud_run(ctx, clients, route, sockets, started.secret, 1)
                    display.log(run_line(result))
                    display.advance()
                    this_round[route.series] = result
                rounds.append(this_round)
            display.step("profile of the service with metrics")
            on_route = routes[0]
            start = time.monotonic() + profile.warmup + 0.3  # inside crud_run's window
            profiled, stacks = await asyncio.gather(
                crud_run(ctx, clients, on_route, sockets, started.secret, 1),
                sample(on.proc.pid, start, profile.seconds - 0.6, ctx.tmp / "metrics-on.txt"),
            )
            display.log(run_line(profiled))
            display.advance()
    table = Table(
        f"CRUD cycle, {sockets} sockets, direct; /metrics answered {exposed} with metrics on,"
        f" {hidden} with metrics off",
        [
            "round",
            "on msgs/s",
            "off msgs/s",
            "on/off",
            "on p99 ms",
            "off p99 ms",
            "on us/msg",
            "off us/msg",
        ],
    )
    ratios = []
    for n, r in enumerate(rounds, 1):
        on_run, off_run = r["metrics on"], r["metrics off"]
        ratio = on_run.rate / off_run.rate if off_run.rate else 0.0
        ratios.append(ratio)
        table.rows.append(
            [
                str(n),
                f"{on_run.rate:,.0f}",
                f"{off_run.rate:,.0f}",
                f"{ratio:.1%}",
                f"{on_run.p99 * 1000:.2f}",
                f"{off_run.p99 * 1000:.2f}",
                f"{on_run.server_us_per_message:.0f}",
                f"{off_run.server_us_per_message:.0f}",
            ]
        )
    swing = (1 - statistics.median(ratios)) * 100
    table.notes = [
        f"Median round: {swing:.1f} % fewer messages a second with metrics (context only:"
        " within the noise of such runs, see above)."
    ]
    metrics_share, samples = share(stacks, METRICS_SOURCES)
    profiled_table = Table(
        "Profile of the service with metrics during a further CRUD run (py-spy, 250 Hz,"
        " the worker's busy samples)",
        ["msgs/s", "server us/msg", "samples", "in metrics code", "us/msg in metrics code"],
        [
            [
                f"{profiled.rate:,.0f}",
                f"{profiled.server_us_per_message:.0f}",
                f"{samples:,}",
                f"{metrics_share:.2%}",
                f"{metrics_share * profiled.server_us_per_message:.1f}",
            ]
        ],
    )
    section.tables = [table, profiled_table]
    if samples < 100:
        section.targets = [
            not_measured("metrics cost on todo CRUD (share of samples)", "< 5 %", "no profile")
        ]
    else:
        section.targets = [
            at_most("metrics cost on todo CRUD (share of samples)", metrics_share * 100, 5.0, "%")
        ]
    return [section]
