"""Contract section 7 in the auth service: registrations and failed logins per client
address (429 `too_many_attempts` + Retry-After), and the bounded hashing queue (503 `busy`).

The servers here trust one proxy (`PROXIES_COUNT=1`, as behind the gateway), so a test plays
many clients by sending `X-Forwarded-For`; the gateway test shows that a real client can't.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.burst import post_json, send_at_once
from tests.auth.conftest import PASSWORD
from tests.stack import start_stack
from tests.support import ServiceProcess

REGISTER_MAX_PER_ADDRESS = 3
REGISTER_WINDOW = 3
LOGIN_MAX_PER_ADDRESS = 4
LOGIN_FAILURE_WINDOW = 3
# Requests sent at the same instant to a server whose hashing queue holds one.
BURST = 40


_address_numbers = itertools.count(1)


def new_address() -> str:
    """A client address no other test of the module has used."""
    number = next(_address_numbers)
    return f"10.0.{number // 250}.{number % 250 + 1}"


def new_username() -> str:
    return f"l{secrets.token_hex(6)}"


class Client:
    """Calls to one auth service as the client at `address` (sent as X-Forwarded-For)."""

    def __init__(self, http: httpx.Client, address: str | None = None) -> None:
        self.http = http
        self.headers = {"X-Forwarded-For": address} if address else {}

    def register(self, username: str, password: str = PASSWORD) -> httpx.Response:
        body = {"username": username, "password": password}
        return self.http.post("/auth/register", json=body, headers=self.headers)

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        body = {"username": username, "password": password}
        return self.http.post("/auth/login", json=body, headers=self.headers)


def start_auth(env: dict[str, str], tmp: Path) -> ServiceProcess:
    return ServiceProcess("auth_service", {**env, "AUTH_DB_URL": f"sqlite://{tmp / 'a.db'}"}, tmp)


@pytest.fixture(scope="module")
def limited_server(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    env = {
        **jwt_env,
        "PROXIES_COUNT": "1",
        "REGISTER_MAX_PER_ADDRESS": str(REGISTER_MAX_PER_ADDRESS),
        "REGISTER_WINDOW": str(REGISTER_WINDOW),
        "LOGIN_MAX_PER_ADDRESS": str(LOGIN_MAX_PER_ADDRESS),
        "LOGIN_FAILURE_WINDOW": str(LOGIN_FAILURE_WINDOW),
        "LOGIN_MAX_FAILURES": "10",  # the per-username limit stays out of the way
    }
    with start_auth(env, tmp_path_factory.mktemp("limits")) as server:
        yield server


@pytest.fixture
def limited(limited_server: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited_server.url, timeout=10) as http:
        yield http


def client(http: httpx.Client) -> Client:
    return Client(http, new_address())


def registered_user(http: httpx.Client) -> str:
    username = new_username()
    assert client(http).register(username).status_code == 201
    return username


def assert_too_many_attempts(response: httpx.Response, window: int) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "too_many_attempts"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    return retry_after


def test_registrations_per_address_are_limited(limited: httpx.Client) -> None:
    alice = client(limited)
    # Bodies refused before any hashing don't count.
    for _ in range(5):
        assert alice.register("no", "short").status_code == 422
    first = new_username()
    assert alice.register(first).status_code == 201
    assert alice.register(new_username()).status_code == 201
    assert alice.register(first.upper()).status_code == 409  # cost a hash: it counts
    refused = alice.register(new_username())
    retry_after = assert_too_many_attempts(refused, REGISTER_WINDOW)
    assert refused.json()["detail"] == "Too many registrations from this address; try later."

    assert client(limited).register(new_username()).status_code == 201  # another address
    time.sleep(retry_after)
    assert alice.register(new_username()).status_code == 201  # the oldest one has left


def test_failed_logins_per_address_whatever_the_usernames(limited: httpx.Client) -> None:
    username = registered_user(limited)
    guesser = client(limited)
    for _ in range(LOGIN_MAX_PER_ADDRESS):  # unknown usernames, each tried once
        assert guesser.login(new_username(), "wrong password").status_code == 401
    # Even a known user with the right password is refused from that address now.
    retry_after = assert_too_many_attempts(guesser.login(username), LOGIN_FAILURE_WINDOW)
    assert client(limited).login(username).status_code == 200  # another address
    time.sleep(retry_after)
    assert guesser.login(username).status_code == 200


def test_successful_logins_do_not_use_the_address_budget(limited: httpx.Client) -> None:
    username = registered_user(limited)
    office = client(limited)  # many people behind one address
    for _ in range(2 * LOGIN_MAX_PER_ADDRESS):
        assert office.login(username).status_code == 200
    for _ in range(LOGIN_MAX_PER_ADDRESS):
        assert office.login(username, "wrong password").status_code == 401
    assert_too_many_attempts(office.login(username), LOGIN_FAILURE_WINDOW)


async def test_a_burst_within_the_default_hash_queue_is_served(
    limited_server: ServiceProcess,
) -> None:
    requests = [
        post_json(
            "/auth/register",
            {"username": new_username(), "password": PASSWORD},
            {"X-Forwarded-For": new_address()},
        )
        for _ in range(BURST)
    ]
    responses = await send_at_once(limited_server.port, requests)
    assert Counter(response.status for response in responses) == {201: BURST}


@pytest.fixture(scope="module")
def busy(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A server whose hashing queue holds one; each address may make exactly BURST attempts."""
    env = {
        **jwt_env,
        "HASH_QUEUE_MAX": "1",
        "REGISTER_MAX_PER_ADDRESS": str(BURST),
        "LOGIN_MAX_PER_ADDRESS": str(BURST),
        "LOGIN_FAILURE_WINDOW": "600",
    }
    with start_auth(env, tmp_path_factory.mktemp("busy")) as server:
        yield server


async def test_hashes_past_the_queue_answer_busy_and_count_nowhere(busy: ServiceProcess) -> None:
    usernames = [new_username() for _ in range(BURST)]
    requests = [
        post_json("/auth/register", {"username": name, "password": PASSWORD}) for name in usernames
    ]
    responses = await send_at_once(busy.port, requests)
    statuses = Counter(response.status for response in responses)
    # A few hashes run or wait; the rest are refused at once rather than queued.
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[201] >= 1 and statuses[503] >= 1, statuses
    for response in responses:
        if response.status == 503:
            assert response.json() == {
                "detail": "The server is busy; try again shortly.",
                "code": "busy",
            }
            assert response.headers["retry-after"] == "1"

    with httpx.Client(base_url=busy.url, timeout=10) as http:
        me = Client(http)  # from 127.0.0.1, as the bursts
        # A refused registration did nothing and used none of the address's budget (BURST).
        refused = [
            name for name, answer in zip(usernames, responses, strict=True) if answer.status == 503
        ]
        for username in refused:
            assert me.register(username).status_code == 201
        assert me.register(new_username()).status_code == 429

        logins = [
            post_json("/auth/login", {"username": new_username(), "password": "wrong password"})
            for _ in range(BURST)
        ]
        statuses = Counter(response.status for response in await send_at_once(busy.port, logins))
        assert set(statuses) <= {401, 503}, statuses
        assert statuses[503] >= 1, statuses
        # A login refused as busy was never checked, so it is no failure either.
        for _ in range(statuses[503]):
            assert me.login(new_username(), "wrong password").status_code == 401
        assert me.login(new_username(), "wrong password").status_code == 429
        assert me.login(usernames[0]).status_code == 429  # the address is spent, for anyone


def test_the_limits_hold_through_the_gateway(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    limits = {"REGISTER_MAX_PER_ADDRESS": "2", "LOGIN_MAX_PER_ADDRESS": "2"}
    stack = start_stack(tmp_path_factory.mktemp("gateway-limits"), jwt_env, limits)
    try:

        def as_client(address: str) -> httpx.Client:
            transport = httpx.HTTPTransport(local_address=address)
            return httpx.Client(base_url=stack.url, transport=transport, timeout=10)

        with as_client("127.0.0.2") as http:
            someone = Client(http, "203.0.113.9")  # a forged X-Forwarded-For changes nothing
            assert someone.register(new_username()).status_code == 201
            assert someone.register(new_username()).status_code == 201
            assert_too_many_attempts(someone.register(new_username()), 3600)
        with as_client("127.0.0.3") as http:
            other = Client(http, "203.0.113.9")  # the same forged header: its own budget still
            username = new_username()
            assert other.register(username).status_code == 201
            for _ in range(2):
                assert other.login(new_username(), "wrong password").status_code == 401
            assert_too_many_attempts(other.login(username), 300)
    finally:
        stack.stop()
