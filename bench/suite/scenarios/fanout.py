"""Scenario 4: fan-out to K sockets of one user.

One user holds K sockets; one of them writes (create a todo, then delete it, one write at
a time) and the time is taken from the send until the last of the K sockets (the writer's
own reply included) has the event. Directly and through the gateway.
"""

from __future__ import annotations

from bench.suite.clients import Clients
from bench.suite.processes import servers
from bench.suite.profile import Profile
from bench.suite.results import Section, Table, ms, percentile
from bench.suite.scenarios.common import Context, socket_urls
from bench.suite.seed import mint_tokens

KEY = "fanout"
TITLE = "Fan-out to K sockets of one user"


def steps(profile: Profile, keys: set[str]) -> int:
    return 1 + 2 * len(profile.fanout_ks)


async def run_sections(ctx: Context, keys: set[str]) -> list[Section]:
    profile, display = ctx.profile, ctx.display
    section = Section(KEY, TITLE, __doc__ or "")
    table = Table(
        f"{profile.fanout_writes} writes per K, one at a time",
        ["path", "K", "ack p50 ms", "ack p99 ms", "last delivery p50 ms", "last delivery p99 ms"],
    )
    with servers(ctx.tmp) as started:
        display.step("starting todo, gateway")
        todo = started.todo(name="todo-fanout")
        gateway = started.gateway(todo.url, name="gateway-fanout")
        display.advance()
        async with Clients(1, ctx.client_log) as clients:
            worker = clients.workers[0]
            for name, base in (("todo", todo.url), ("todo via gateway", gateway.url)):
                for k in profile.fanout_ks:
                    display.step(f"{name}, K={k}")
                    token = mint_tokens(started.secret, ctx.users.take(1))
                    url = socket_urls(base, token, 1)[0]
                    answer = await worker.call("fanout", url=url, k=k, writes=profile.fanout_writes)
                    last, ack = answer["last"], answer["ack"]
                    table.rows.append(
                        [
                            name,
                            str(k),
                            ms(percentile(ack, 0.5)),
                            ms(percentile(ack, 0.99)),
                            ms(percentile(last, 0.5)),
                            ms(percentile(last, 0.99)),
                        ]
                    )
                    display.log(f"  fan-out {name} K={k}: " + " | ".join(table.rows[-1][2:]))
                    display.advance()
    section.tables = [table]
    return [section]
