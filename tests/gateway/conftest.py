"""Real processes for the gateway tests: small upstreams (`upstream_app.py`) and gateways."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ServiceProcess

UPSTREAM_MODULE = "tests.gateway.upstream_app"


def start_upstream(name: str, log_dir: Path, **env: str) -> ServiceProcess:
    """One `upstream_app` process called `name`, started and healthy."""
    return ServiceProcess(
        UPSTREAM_MODULE, {"UPSTREAM_NAME": name, **env}, log_dir, name=name
    ).start()


def start_gateway(
    auth: list[ServiceProcess], todo: list[ServiceProcess], log_dir: Path, **env: str
) -> ServiceProcess:
    """A gateway in front of the given replicas (extra settings as keyword arguments)."""
    settings = {
        "AUTH_UPSTREAMS": ",".join(p.url for p in auth),
        "TODO_UPSTREAMS": ",".join(p.url for p in todo),
        "GATEWAY_HEALTH_INTERVAL": "0.3",
        "GATEWAY_CONNECT_TIMEOUT": "2",
        **env,
    }
    return ServiceProcess("gateway", settings, log_dir).start()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


@dataclass
class BasicStack:
    """One auth upstream, one todo upstream, a gateway in front of both."""

    auth: ServiceProcess
    todo: ServiceProcess
    gateway: ServiceProcess

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def ws_url(self) -> str:
        return self.gateway.ws_url


MAX_BODY = 6 * 1024 * 1024


@pytest.fixture(scope="session")
def basic_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BasicStack]:
    log_dir = tmp_path_factory.mktemp("gateway-basic")
    processes: list[ServiceProcess] = []
    try:
        auth = start_upstream("auth-1", log_dir)
        processes.append(auth)
        todo = start_upstream("todo-1", log_dir)
        processes.append(todo)
        gateway = start_gateway(
            [auth],
            [todo],
            log_dir,
            GATEWAY_MAX_BODY=str(MAX_BODY),
            GATEWAY_READ_TIMEOUT="1.5",
        )
        processes.append(gateway)
        yield BasicStack(auth, todo, gateway)
    finally:
        for process in reversed(processes):
            process.stop()
