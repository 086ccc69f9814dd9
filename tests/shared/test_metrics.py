"""`/metrics` on a real auth service with two worker processes: every scrape, whichever
worker answers it, shows the whole service (prometheus-client's multiprocess mode).

Several workers share a database only on PostgreSQL (its migrations run under a lock), as
in production: these tests need the machine's PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.scrape import Scrape, scrape
from tests.support import (
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
    new_jwt_secret,
    require_postgres,
)

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
WORKERS = 2


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    require_postgres()
    url = create_postgres_database("metrics_auth")
    yield url
    drop_postgres_database(url)


def auth_env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        "JWT_SECRET": new_jwt_secret(),
        "AUTH_DB_URL": db_url,
        "LOGIN_MAX_FAILURES": "2",
        **extra,
    }


def worker_pids(main_pid: int) -> list[int]:
    """The main process's children that are Sanic workers (they carry SANIC_WORKER_NAME)."""
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    return [int(pid) for pid in children if "SANIC_WORKER_NAME" in environ_of(int(pid))]


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode(errors="replace") for key, value in pairs}


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Iterator[ServiceProcess]:
    tmp_path = tmp_path_factory.mktemp("metrics-auth")
    server = ServiceProcess("auth_service", auth_env(db_url), tmp_path, name="auth")
    server.extra_args = ["--workers", str(WORKERS)]
    server.start(timeout=60)
    wait_for_workers(server)
    yield server
    server.stop()


def wait_for_workers(server: ServiceProcess, count: int = WORKERS) -> Scrape:
    """One worker answers `/healthz` before the other has started: wait for all of them.

    Then a moment more: Sanic's main process ignores a stop signal until it has seen every
    worker's start-up acknowledgement (tests/support.py, ACK_SETTLE_SECONDS).
    """
    deadline = time.monotonic() + 15
    while True:
        found = scrape(server.url)
        if found.value("service_worker_processes") == count or time.monotonic() > deadline:
            time.sleep(0.5)
            return found
        time.sleep(0.1)


def test_every_scrape_adds_up_every_worker(auth: ServiceProcess) -> None:
    assert auth.proc is not None
    assert len(worker_pids(auth.proc.pid)) == WORKERS
    before = scrape(auth.url).total("http_requests_total", route="/healthz")
    for _ in range(20):  # a new connection each: the kernel spreads them over the workers
        assert httpx.get(f"{auth.url}/healthz", timeout=5).status_code == 200
    for _ in range(4):  # each scrape, whichever worker answers it, sees all 20
        found = scrape(auth.url)
        assert found.value("service_worker_processes") == WORKERS
        healthz = found.value("http_requests_total", route="/healthz", method="GET", status="200")
        assert healthz == before + 20
        assert found.value(
            "http_request_duration_seconds_count", route="/healthz", method="GET"
        ) == (before + 20)


def test_login_outcomes_registrations_and_the_throttle(auth: ServiceProcess) -> None:
    before = scrape(auth.url)
    username = f"m{secrets.token_hex(5)}"
    credentials = {"username": username, "password": PASSWORD}
    wrong = {"username": username, "password": "not the password"}
    with httpx.Client(base_url=auth.url, timeout=10) as http:
        assert http.post("/auth/register", json=credentials).status_code == 201
        assert http.post("/auth/register", json=credentials).status_code == 409
        assert http.post("/auth/login", json=credentials).status_code == 200
        # LOGIN_MAX_FAILURES=2: two refusals, then the throttle (each worker counts its
        # own, so go on until one refuses: at most two more attempts with two workers).
        statuses = [http.post("/auth/login", json=wrong).status_code for _ in range(2)]
        while statuses[-1] != 429 and len(statuses) < 2 * WORKERS + 1:
            statuses.append(http.post("/auth/login", json=wrong).status_code)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    invalid = len(statuses) - 1

    after = scrape(auth.url)

    def moved(name: str, **labels: str) -> float:
        return (after.value(name, **labels) or 0) - (before.value(name, **labels) or 0)

    assert moved("auth_registrations_total", outcome="created") == 1
    assert moved("auth_registrations_total", outcome="username_taken") == 1
    assert moved("auth_logins_total", outcome="success") == 1
    assert moved("auth_logins_total", outcome="invalid_credentials") == invalid
    assert moved("auth_logins_total", outcome="throttled") == 1
    assert moved("auth_throttle_hits_total", action="login") == 1
    assert moved("auth_logins_total", outcome="busy") == 0
    # By route pattern and status, with latency.
    assert moved("http_requests_total", route="/auth/login", method="POST", status="401") == invalid
    assert moved("http_requests_total", route="/auth/login", method="POST", status="429") == 1
    assert moved("http_requests_total", route="/auth/register", method="POST", status="201") == 1
    assert moved("http_request_duration_seconds_count", route="/auth/login", method="POST") == (
        len(statuses) + 1
    )
    # Two registrations and 1 + `invalid` verifications went through the hashing threads
    # (the throttled attempt never did); none is waiting or running any more.
    assert moved("auth_password_hash_seconds_count") == 2 + 1 + invalid
    assert after.value("auth_password_hashes_waiting") == 0
    assert after.value("auth_password_hashes_running") == 0
    assert after.types["auth_password_hashes_waiting"] == "gauge"
    assert after.types["auth_logins"] == "counter"
    assert after.types["http_request_duration_seconds"] == "histogram"


def test_route_labels_are_patterns_never_raw_paths(auth: ServiceProcess) -> None:
    marker = f"nosuchpath{secrets.token_hex(6)}"
    for index in range(3):
        assert httpx.get(f"{auth.url}/{marker}/{index}", timeout=5).status_code == 404
    assert httpx.request("BREW", f"{auth.url}/healthz", timeout=5).status_code in {400, 405}
    response = httpx.get(f"{auth.url}/metrics", timeout=5)
    assert marker not in response.text and "BREW" not in response.text
    found = scrape(auth.url)
    assert found.total("http_requests_total", route="<unmatched>", status="404") >= 3
    routes = found.label_values("http_requests_total", "route")
    assert all(route.startswith("/") or route == "<unmatched>" for route in routes)
    assert found.label_values("http_requests_total", "method") <= {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
    }  # fmt: skip


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_each_start_has_a_fresh_directory_removed_on_stop(tmp_path: Path, db_url: str) -> None:
    temp = tmp_path / "tmp"  # the service's $TMPDIR
    temp.mkdir()
    orphan = temp / f"auth_service-metrics-{dead_pid()}-left"  # its main process was killed
    alive = temp / f"auth_service-metrics-{os.getpid()}-running"  # another one, running
    for path in (orphan, alive):
        path.mkdir()
    env = auth_env(db_url, TMPDIR=str(temp))
    server = ServiceProcess("auth_service", env, tmp_path, name="auth-dir")
    server.extra_args = ["--workers", str(WORKERS)]
    try:
        server.start(timeout=60)
        wait_for_workers(server)
        assert not orphan.exists() and alive.exists()
        assert server.proc is not None
        directories = {
            environ_of(pid).get("PROMETHEUS_MULTIPROC_DIR") for pid in worker_pids(server.proc.pid)
        }
        assert len(directories) == 1, "every worker writes to the same directory"
        directory = Path(str(directories.pop()))
        assert directory.parent == temp and directory.is_dir()
        assert directory.name.startswith(f"auth_service-metrics-{server.proc.pid}-")
        assert os.listdir(directory), "the workers' files"
        login = {"username": "nobody", "password": PASSWORD}
        assert httpx.post(f"{server.url}/auth/login", json=login).status_code == 401
        assert scrape(server.url).value("auth_logins_total", outcome="invalid_credentials") == 1
    finally:
        assert server.stop() == 0, server.logs()
    assert not directory.exists(), "removed when the service stops"
    # The next start counts from zero, not from the last run's files.
    try:
        server.start(timeout=60)
        again = wait_for_workers(server)
        assert again.value("auth_logins_total", outcome="invalid_credentials") == 0
    finally:
        assert server.stop() == 0, server.logs()
    assert "Traceback" not in server.logs()
    assert [path.name for path in temp.iterdir()] == [alive.name]


def test_metrics_enabled_false_serves_no_route_and_records_nothing(
    tmp_path: Path, db_url: str
) -> None:
    env = auth_env(db_url, METRICS_ENABLED="false")
    server = ServiceProcess("auth_service", env, tmp_path, name="auth-off")
    with server:
        response = httpx.get(f"{server.url}/metrics", timeout=5)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        credentials = {"username": f"o{secrets.token_hex(5)}", "password": PASSWORD}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.post("/auth/register", json=credentials).status_code == 201
            assert http.post("/auth/login", json=credentials).status_code == 200
        assert server.proc is not None
        for pid in worker_pids(server.proc.pid):
            assert "PROMETHEUS_MULTIPROC_DIR" not in environ_of(pid)
