"""The real stack: auth service, todo service and gateway processes, SQLite files in a folder.

Used by the gateway's end-to-end test and the browser tests."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support import ServiceProcess


@dataclass
class LocalStack:
    """Three real services on free ports; the browser only ever talks to `gateway`."""

    auth: ServiceProcess
    todo: ServiceProcess
    gateway: ServiceProcess
    tmp_dir: Path

    @property
    def url(self) -> str:
        return self.gateway.url

    def todo_env(self) -> dict[str, str]:
        return dict(self.todo.env)

    def stop(self) -> None:
        # In parallel: a service that is slow to drain then costs its own wait, not a sum.
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda service: service.stop(), (self.gateway, self.todo, self.auth)))

    def logs(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.logs()}" for s in (self.auth, self.todo, self.gateway))


def start_stack(
    tmp_dir: Path,
    jwt_env: Mapping[str, str],
    auth_env: Mapping[str, str] | None = None,
    every_env: Mapping[str, str] | None = None,
) -> LocalStack:
    """Start the three services (in parallel, then wait for each) with SQLite files in tmp_dir.

    `every_env` goes to all three (e.g. a setting of `ServiceSettings`)."""
    common = {**jwt_env, "PROXIES_COUNT": "1", "LOG_LEVEL": "INFO", **(every_env or {})}
    auth = ServiceProcess(
        "auth_service",
        {**common, "AUTH_DB_URL": f"sqlite://{tmp_dir / 'auth.sqlite3'}", **(auth_env or {})},
        tmp_dir,
    )
    todo = ServiceProcess(
        "todo_ws_service",
        {**common, "TODO_DB_URL": f"sqlite://{tmp_dir / 'todo.sqlite3'}"},
        tmp_dir,
    )
    gateway = ServiceProcess(
        "gateway",
        {
            "AUTH_UPSTREAMS": auth.url,
            "TODO_UPSTREAMS": todo.url,
            "GATEWAY_HEALTH_INTERVAL": "0.5",
            "LOG_LEVEL": "INFO",
            **(every_env or {}),
        },
        tmp_dir,
    )
    stack = LocalStack(auth, todo, gateway, tmp_dir)
    try:
        for service in (auth, todo, gateway):
            service.start(wait=False)
        for service in (auth, todo, gateway):
            service.wait_healthy()
    except BaseException:
        stack.stop()
        raise
    return stack
