"""Scenario 6: logins saturating the password hashing, and `/healthz` meanwhile.

Closed loops of `POST /auth/login` (argon2id verification in the auth service's hashing
threads) keep every hashing thread busy with a queue behind it; a second load generator
process asks the auth service's `/healthz` every 10 ms, one request at a time, first with
no login load (the baseline) and then under it. Hashing must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.suite.clients import Clients
from bench.suite.processes import servers
from bench.suite.profile import Profile
from bench.suite.results import Section, Table, at_most, ms, percentile
from bench.suite.scenarios.common import Context, cpu_at

KEY = "logins"
TITLE = "Logins saturating argon2, /healthz latency meanwhile"
PASSWORD = "bench-pass-1"
PROBE_INTERVAL = 0.01


def steps(profile: Profile, keys: set[str]) -> int:
    return 3


async def register(base: str, count: int) -> list[str]:
    names = [f"bench{n}_{int(time.time())}" for n in range(count)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for name in names:
            response = await client.post(
                "/auth/register", json={"username": name, "password": PASSWORD}
            )
            response.raise_for_status()
    return names


async def run_sections(ctx: Context, keys: set[str]) -> list[Section]:
    profile, display = ctx.profile, ctx.display
    section = Section(KEY, TITLE, __doc__ or "")
    with servers(ctx.tmp) as started:
        display.step("starting auth, registering users")
        auth = started.auth(name="auth-logins")
        assert auth.proc
        users = await register(auth.url, profile.login_concurrency)
        display.advance()
        async with Clients(2, ctx.client_log) as clients:
            loader, prober = clients.workers
            display.step("/healthz, no load")
            start = time.monotonic() + 0.3
            idle = await prober.call(
                "probe",
                url=auth.url + "/healthz",
                interval=PROBE_INTERVAL,
                start=start,
                stop=start + min(3.0, profile.login_seconds),
            )
            display.advance()
            display.step(f"{profile.login_concurrency} login loops + /healthz")
            start = time.monotonic() + profile.warmup
            stop = start + profile.login_seconds
            loaded, probed, cpu0, cpu1 = await asyncio.gather(
                loader.call(
                    "logins",
                    base_url=auth.url,
                    users=users,
                    password=PASSWORD,
                    concurrency=profile.login_concurrency,
                    start=start,
                    stop=stop,
                ),
                prober.call(
                    "probe",
                    url=auth.url + "/healthz",
                    interval=PROBE_INTERVAL,
                    start=start,
                    stop=stop,
                ),
                cpu_at(start, [auth.proc.pid]),
                cpu_at(stop, [auth.proc.pid]),
            )
            display.advance()
    outcomes = loaded["outcomes"]
    ok = outcomes.get("200", 0)
    seconds = stop - start
    logins_table = Table(
        f"{profile.login_concurrency} concurrent login loops for {seconds:.0f} s",
        ["logins/s", "login p50 ms", "login p99 ms", "answers", "auth CPU (cores)"],
        [
            [
                f"{ok / seconds:,.1f}",
                ms(percentile(loaded["latencies"], 0.5)),
                ms(percentile(loaded["latencies"], 0.99)),
                ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())),
                f"{(cpu1 - cpu0) / seconds:.2f}",
            ]
        ],
    )
    health = Table(
        f"/healthz of the auth service, one request every {PROBE_INTERVAL * 1000:.0f} ms",
        ["load", "requests", "p50 ms", "p99 ms", "max ms", "failures"],
    )
    for label, answer in (("none", idle), ("logins saturating hashing", probed)):
        values = answer["latencies"]
        health.rows.append(
            [
                label,
                str(len(values)),
                ms(percentile(values, 0.5)),
                ms(percentile(values, 0.99)),
                ms(max(values, default=0.0)),
                str(answer["failures"]),
            ]
        )
    display.log(f"  logins: {ok / seconds:.1f}/s; /healthz p99 under load {health.rows[1][3]} ms")
    section.tables = [logins_table, health]
    section.targets = [
        at_most(
            "/healthz p99 while logins saturate hashing",
            percentile(probed["latencies"], 0.99) * 1000,
            20.0,
            "ms",
        )
    ]
    return [section]
