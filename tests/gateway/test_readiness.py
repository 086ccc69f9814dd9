"""The gateway's `/readyz` vouches only for checked replicas; health paths through it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import start_gateway, start_upstream, wait_until
from tests.stack import start_stack
from tests.support import ServiceProcess, free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield listener.getsockname()[1]


def replica_states(gateway: ServiceProcess) -> list[dict[str, object]]:
    body = httpx.get(gateway.url + "/readyz", timeout=5).json()
    return [replica for pool in body["upstreams"].values() for replica in pool]


def answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def no_upstream_gateway(port: int, tmp_path: Path, interval: str = "60") -> ServiceProcess:
    url = f"http://127.0.0.1:{port}"
    env = {"AUTH_UPSTREAMS": url, "TODO_UPSTREAMS": url, "GATEWAY_HEALTH_INTERVAL": interval}
    return ServiceProcess("gateway", env, tmp_path).start()


def test_a_replica_not_checked_yet_is_not_ready(silent_port: int, tmp_path: Path) -> None:
    # The first check waits 2 s for an answer that never comes: until then, "unknown".
    gateway = no_upstream_gateway(silent_port, tmp_path)
    try:
        ready = httpx.get(gateway.url + "/readyz", timeout=5)
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "unavailable" and body["code"] == "not_ready"
        assert body["detail"] == "no healthy replica: auth, todo"
        assert {(r["status"], r["error"]) for r in replica_states(gateway)} == {
            ("unknown", "not checked yet")
        }
        # Once the check has timed out the replicas are down, with the reason.
        wait_until(
            lambda: {r["status"] for r in replica_states(gateway)} == {"down"}, 10, "timeout"
        )
        assert {r["error"] for r in replica_states(gateway)} == {"readyz: ReadTimeout"}
        assert httpx.get(gateway.url + "/readyz", timeout=5).status_code == 503
    finally:
        assert gateway.stop() == 0, gateway.logs()


def test_a_closed_port_is_not_ready_from_the_first_request(tmp_path: Path) -> None:
    gateway = no_upstream_gateway(free_port(), tmp_path)
    try:
        ready = httpx.get(gateway.url + "/readyz", timeout=5)
        assert ready.status_code == 503, ready.text
        errors = {r["error"] for r in ready.json()["upstreams"]["auth"]}
        assert errors <= {"not checked yet", "readyz: ConnectError"}, errors
        wait_until(
            lambda: {r["error"] for r in replica_states(gateway)} == {"readyz: ConnectError"},
            10,
            "the first check",
        )
    finally:
        gateway.stop()


def test_a_live_replica_is_ready_after_the_first_check(tmp_path: Path) -> None:
    upstream = start_upstream("both", tmp_path)
    # The next poll is a minute away: only the check made at start-up can make it ready.
    gateway = start_gateway([upstream], [upstream], tmp_path, GATEWAY_HEALTH_INTERVAL="60")
    try:
        wait_until(
            lambda: httpx.get(gateway.url + "/readyz", timeout=5).status_code == 200,
            10,
            "ready after the start-up check",
        )
        assert {(r["status"], r["error"]) for r in replica_states(gateway)} == {("up", None)}
    finally:
        gateway.stop()
        upstream.stop()


def test_each_services_health_answers_through_the_gateway(
    tmp_path: Path, jwt_env: dict[str, str]
) -> None:
    """docs/gateway.md: `/auth/healthz` is the auth service's health, `/ws_ep/healthz` the
    todo service's (paths are forwarded unchanged; each service answers both spellings)."""
    stack = start_stack(tmp_path, jwt_env)
    try:
        for prefix in ("/auth", "/ws_ep"):
            health = httpx.get(f"{stack.url}{prefix}/healthz", timeout=5)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            # Not a 404: the service's own readiness (its database ping may lag on a busy box).
            ready_url = f"{stack.url}{prefix}/readyz"
            assert httpx.get(ready_url, timeout=5).json()["status"] in {"ready", "unavailable"}
            is_ready = partial(lambda url: httpx.get(url, timeout=5).status_code == 200, ready_url)
            wait_until(is_ready, 20, ready_url)
        assert httpx.get(stack.url + "/auth/readyz").json()["checks"] == {"database": "ok"}
        # The OpenAPI document lists the auth service's health once, at its own paths.
        paths = set(httpx.get(stack.url + "/auth/openapi.json", timeout=5).json()["paths"])
        assert {"/healthz", "/readyz"} <= paths and "/auth/healthz" not in paths
    finally:
        stack.stop()


@pytest.mark.parametrize("module", ["auth_service", "todo_ws_service"])
def test_probes_that_give_up_during_start_up_leave_the_service_ready(
    module: str, tmp_path: Path, jwt_env: dict[str, str]
) -> None:
    """The gateway's polls (2 s timeout) reach a service that is still starting, give up,
    and the service then runs them anyway and cancels them. The first database query
    opens the connection, and cancelling that one left Tortoise's SQLite client hanging
    for good: every later `/readyz` timed out, so the gateway never became ready."""
    db = {"auth_service": "AUTH_DB_URL", "todo_ws_service": "TODO_DB_URL"}[module]
    env = {**jwt_env, db: f"sqlite://{tmp_path}/probe.sqlite3"}
    server = ServiceProcess(module, env, tmp_path).start(wait=False)
    try:
        answered = False
        while not answered:  # impatient probes until the service answers one
            assert server.proc is not None and server.proc.poll() is None, server.logs()
            try:
                answered = httpx.get(server.url + "/readyz", timeout=0.05).status_code > 0
            except httpx.HTTPError:
                pass
        for _ in range(5):  # and a few more while it settles
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(server.url + "/readyz", timeout=0.001)
        wait_until(partial(answers_200, server.url + "/readyz"), 30, "ready after early probes")
        assert httpx.get(server.url + "/readyz", timeout=5).json()["status"] == "ready"
    finally:
        server.stop()
