"""How long and how big each scenario runs: the full profile and `--quick`."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Profile:
    name: str
    sockets: tuple[int, ...]  # CRUD sweep: sockets per run
    headline_sockets: int  # the socket count the targets are judged at
    warmup: float  # seconds of load before each measurement
    seconds: float  # seconds measured per CRUD run
    rounds: int  # rounds of the headline series (the median round is reported)
    connect_seconds: float
    fanout_ks: tuple[int, ...]
    fanout_writes: int
    login_seconds: float
    login_concurrency: int
    swarm_sockets: int  # idle / resume scenarios
    swarm_todos: int  # todos per swarm user
    metrics_rounds: int
    clients: int  # load generator processes for the CRUD sweep at 64+ sockets

    def with_overrides(
        self,
        seconds: float | None = None,
        sockets: tuple[int, ...] | None = None,
        swarm: int | None = None,
        clients: int | None = None,
    ) -> Profile:
        changed = self
        if seconds is not None:
            changed = replace(
                changed,
                seconds=seconds,
                warmup=min(changed.warmup, max(0.2, seconds / 2)),
                connect_seconds=seconds,
                login_seconds=max(1.0, seconds),
            )
        if sockets is not None:
            headline = 16 if 16 in sockets else sockets[len(sockets) // 2]
            changed = replace(changed, sockets=sockets, headline_sockets=headline)
        if swarm is not None:
            changed = replace(changed, swarm_sockets=swarm)
        if clients is not None:
            changed = replace(changed, clients=clients)
        return changed


FULL = Profile(
    name="full",
    sockets=(1, 4, 16, 64, 256),
    headline_sockets=16,
    warmup=1.0,
    seconds=4.0,
    rounds=5,
    connect_seconds=4.0,
    fanout_ks=(1, 10, 100),
    fanout_writes=200,
    login_seconds=8.0,
    login_concurrency=16,
    swarm_sockets=9000,
    swarm_todos=50,
    metrics_rounds=3,
    clients=2,
)

QUICK = Profile(
    name="quick",
    sockets=(1, 16, 64),
    headline_sockets=16,
    warmup=0.3,
    seconds=1.0,
    rounds=1,
    connect_seconds=1.0,
    fanout_ks=(1, 10, 100),
    fanout_writes=30,
    login_seconds=1.5,
    login_concurrency=8,
    swarm_sockets=500,
    swarm_todos=50,
    metrics_rounds=1,
    clients=2,
)
