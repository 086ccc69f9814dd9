"""The servers under test, started from this tree as `python -m <module>` subprocesses.

`tests/support.py`'s `ServiceProcess` does the starting (free port, environment, wait for
`/healthz`, SIGTERM then SIGKILL of the group); `Servers` keeps track of everything one
scenario started so that all of it is stopped, whatever happens.
"""

from __future__ import annotations

import contextlib
import resource
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from tests.support import REPO_ROOT, ServiceProcess, free_port

# Section 7's limits, opened wide: the benchmark measures the service, not its limits.
GENEROUS_LIMITS = {
    "WS_RATE_LIMIT": "0",
    "WS_MAX_CONNECTIONS_PER_USER": "0",
    "TODO_MAX_PER_USER": "0",
    "REGISTER_MAX_PER_ADDRESS": "0",
    "LOGIN_MAX_PER_ADDRESS": "0",
    "LOGIN_MAX_FAILURES": "0",
    "HASH_QUEUE_MAX": "1024",
}
QUIET = {"LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}


class Stoppable(Protocol):
    name: str

    def stop(self) -> object: ...


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Servers:
    """What one scenario started, stopped together (in parallel) at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.secret = secrets.token_urlsafe(48)
        self._running: list[Stoppable] = []

    def track(self, process: Stoppable) -> None:
        self._running.append(process)

    def _start(self, service: ServiceProcess, wait: bool = True) -> ServiceProcess:
        """Start `service`; with `wait=False`, call its `wait_healthy()` later (several
        services then start side by side)."""
        self.track(service)
        return service.start(wait=wait, timeout=60)

    def todo(self, name: str = "todo", wait: bool = True, **extra: str) -> ServiceProcess:
        """The todo service on a fresh SQLite file, limits off, logs at WARNING."""
        env = {
            **QUIET,
            **GENEROUS_LIMITS,
            "JWT_SECRET": self.secret,
            "TODO_DB_URL": f"sqlite://{self.tmp / (name + '.sqlite3')}",
            **extra,
        }
        return self._start(ServiceProcess("todo_ws_service", env, self.tmp, name=name), wait)

    def auth(self, name: str = "auth", wait: bool = True, **extra: str) -> ServiceProcess:
        env = {
            **QUIET,
            **GENEROUS_LIMITS,
            "JWT_SECRET": self.secret,
            "AUTH_DB_URL": f"sqlite://{self.tmp / (name + '.sqlite3')}",
            **extra,
        }
        return self._start(ServiceProcess("auth_service", env, self.tmp, name=name), wait)

    def gateway(
        self, todo_url: str, name: str = "gateway", auth_url: str = "", wait: bool = True
    ) -> ServiceProcess:
        """The gateway with `todo_url` behind `/ws_ep/` (a dead port behind `/auth/`)."""
        env = {
            **QUIET,
            "TODO_UPSTREAMS": todo_url,
            "AUTH_UPSTREAMS": auth_url or f"http://127.0.0.1:{free_port()}",
        }
        return self._start(ServiceProcess("gateway", env, self.tmp, name=name), wait)

    def echo(self, name: str = "echo", wait: bool = True) -> ServiceProcess:
        """bench/echo_server.py: bare Sanic, one worker, every text frame sent back."""
        service = ServiceProcess("bench.echo_server", dict(QUIET), self.tmp, name=name)
        return self._start(service, wait)

    def stop_all(self) -> None:
        running, self._running = self._running, []
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(lambda process: process.stop(), running))


@contextlib.contextmanager
def servers(tmp: Path) -> Iterator[Servers]:
    started = Servers(tmp)
    try:
        yield started
    finally:
        started.stop_all()


def ws_url(base: ServiceProcess | str, token: str | None = None) -> str:
    """The todo socket's URL on `base` (a service, or an `http://host:port` string)."""
    root = base.ws_url if isinstance(base, ServiceProcess) else "ws" + base.removeprefix("http")
    return f"{root}/ws_ep/ws" + (f"?token={token}" if token else "")


__all__ = ["REPO_ROOT", "Servers", "ServiceProcess", "free_port", "servers", "ws_url"]
