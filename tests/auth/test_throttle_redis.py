"""The login and registration limits shared through Redis (REDIS_URL on the auth service).

Two auth service processes, replicas A and B, share one database (SQLite file, then
PostgreSQL) and the machine's Redis under a key prefix of this module's own: what one
counts, the other sees. An outage runs on a redis-server of the test's own, stopped and
started again while the replicas keep answering.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import make_db_url
from tests.support import REDIS_URL, RedisServer, ServiceProcess, require_postgres

pytestmark = pytest.mark.redis

PASSWORD = "correct horse battery"
LOGIN_MAX_FAILURES = 3
LOGIN_MAX_PER_ADDRESS = 5
REGISTER_MAX_PER_ADDRESS = 3
WINDOW = 4  # seconds, for logins and registrations alike

_addresses = itertools.count(1)


def new_address() -> str:
    """A client address (sent as X-Forwarded-For) no other test here has used."""
    number = next(_addresses)
    return f"10.9.{number // 250}.{number % 250 + 1}"


def new_username() -> str:
    return f"r{secrets.token_hex(6)}"


class Replica:
    """Calls to one auth process as the client at one address."""

    def __init__(self, server: ServiceProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def register(self, username: str, address: str) -> httpx.Response:
        body = {"username": username, "password": PASSWORD}
        return self.http.post("/auth/register", json=body, headers={"X-Forwarded-For": address})

    def login(self, username: str, address: str, password: str = PASSWORD) -> httpx.Response:
        body = {"username": username, "password": password}
        return self.http.post("/auth/login", json=body, headers={"X-Forwarded-For": address})


def replica_env(
    jwt_env: dict[str, str], db_url: str, redis_url: str, prefix: str
) -> dict[str, str]:
    return {
        **jwt_env,
        "AUTH_DB_URL": db_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "REDIS_TIMEOUT": "0.5",
        "PROXIES_COUNT": "1",
        "LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
        "LOGIN_MAX_PER_ADDRESS": str(LOGIN_MAX_PER_ADDRESS),
        "LOGIN_FAILURE_WINDOW": str(WINDOW),
        "REGISTER_MAX_PER_ADDRESS": str(REGISTER_MAX_PER_ADDRESS),
        "REGISTER_WINDOW": str(WINDOW),
    }


def start_pair(env: dict[str, str], log_dir: Path) -> tuple[Replica, Replica]:
    a = ServiceProcess("auth_service", env, log_dir, name="auth-a")
    b = ServiceProcess("auth_service", env, log_dir, name="auth-b")
    a.start()  # the first applies the migrations; then the second
    b.start()
    return Replica(a), Replica(b)


def stop_pair(*replicas: Replica) -> None:
    for replica in replicas:
        replica.http.close()
        replica.server.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "postgres":
        require_postgres()
    yield from make_db_url(request.param, "auth_shared", tmp_path_factory.mktemp("shareddb"))


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"test-throttle-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def replicas(
    jwt_env: dict[str, str],
    shared_db_url: str,
    prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, Replica]]:
    env = replica_env(jwt_env, shared_db_url, REDIS_URL, prefix)
    pair = start_pair(env, tmp_path_factory.mktemp("replicas"))
    yield pair
    stop_pair(*pair)
    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter(f"{prefix}:*"):
        store.delete(key)
    store.close()


def assert_too_many_attempts(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json() == {
        "detail": response.json()["detail"],
        "code": "too_many_attempts",
    }
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    return retry_after


def test_failures_on_one_replica_count_on_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    username, address = new_username(), new_address()
    assert a.register(username, new_address()).status_code == 201
    assert a.login(username, address, "wrong password 1").status_code == 401
    assert b.login(username, address, "wrong password 2").status_code == 401
    assert a.login(username, address, "wrong password 3").status_code == 401
    # Three failures, two on A and one on B: both refuse, even the right password.
    assert_too_many_attempts(b.login(username, address))
    assert_too_many_attempts(a.login(username, address))
    # Another address has its own budget for the same name.
    assert b.login(username, new_address()).status_code == 200


def test_a_success_on_one_replica_clears_the_failures_on_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    username, address = new_username(), new_address()
    assert a.register(username, new_address()).status_code == 201
    for _ in range(LOGIN_MAX_FAILURES - 1):
        assert a.login(username, address, "wrong").status_code == 401
    assert b.login(username, address).status_code == 200  # clears the pair everywhere
    for _ in range(LOGIN_MAX_FAILURES):
        assert a.login(username, address, "wrong").status_code == 401
    assert_too_many_attempts(b.login(username, address, "wrong"))


def test_the_window_passes_on_every_replica(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    username, address = new_username(), new_address()
    assert b.register(username, new_address()).status_code == 201
    for _ in range(LOGIN_MAX_FAILURES):
        assert b.login(username, address, "wrong").status_code == 401
    retry_after = assert_too_many_attempts(a.login(username, address))
    time.sleep(retry_after + 0.5)
    assert a.login(username, address).status_code == 200


def test_failed_logins_per_address_are_shared(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    address = new_address()
    for number in range(LOGIN_MAX_PER_ADDRESS):  # unknown names, each tried once
        replica = (a, b)[number % 2]
        assert replica.login(new_username(), address).status_code == 401
    assert_too_many_attempts(a.login(new_username(), address))
    assert_too_many_attempts(b.login(new_username(), address))


def test_registrations_per_address_are_shared(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    address = new_address()
    taken = new_username()
    assert a.register(taken, address).status_code == 201
    assert b.register(taken, address).status_code == 409  # a taken name counts too
    assert b.register(new_username(), address).status_code == 201
    refused = a.register(new_username(), address)
    assert_too_many_attempts(refused)
    assert "registrations" in refused.json()["detail"]
    assert b.register(new_username(), new_address()).status_code == 201


def test_the_counts_live_in_redis_under_the_prefix(
    replicas: tuple[Replica, Replica], prefix: str
) -> None:
    a, _ = replicas
    username, address = new_username(), new_address()
    assert a.login(username, address, "wrong").status_code == 401
    store = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key.decode() for key in store.scan_iter(f"{prefix}:*")]
    finally:
        store.close()
    assert any(address in key and key.startswith(f"{prefix}:login-pair/") for key in keys)
    assert any(key.startswith(f"{prefix}:login-address/{address}/") for key in keys)
    # The attempted username is not stored in the clear (people type passwords there).
    assert not any(username in key for key in keys)


def test_with_redis_down_logins_go_on_counted_per_process(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("outage")
    own_redis = RedisServer(tmp).start()
    env = replica_env(jwt_env, f"sqlite://{tmp / 'auth.sqlite3'}", own_redis.url, "outage")
    a, b = start_pair(env, tmp)
    try:
        username, address = new_username(), new_address()
        assert a.register(username, new_address()).status_code == 201
        own_redis.stop()
        # Fail open: still answered, each process counting its own attempts.
        for _ in range(LOGIN_MAX_FAILURES):
            assert a.login(username, address, "wrong").status_code == 401
        assert_too_many_attempts(a.login(username, address))
        assert b.login(username, address).status_code == 200  # B never saw those
        assert "throttle store unreachable" in a.server.logs()
        # Redis back: shared again.
        own_redis.start()
        other = new_address()
        for replica in (a, b, a):
            assert replica.login(username, other, "wrong").status_code == 401
        assert_too_many_attempts(b.login(username, other))
        assert "throttle store reachable again" in b.server.logs()
    finally:
        stop_pair(a, b)
        own_redis.stop()
