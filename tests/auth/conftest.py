"""One real auth service per database backend (SQLite and PostgreSQL) for a test module.

Starting a server costs a second or two, so each test module shares one per backend
(module scope) and every test works with its own freshly named users.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_db_url
from tests.support import ServiceProcess, require_postgres

# The module server allows 3 failed logins per (username, address) in a 3 s window, so the
# throttling test is quick; every other test uses fresh usernames and stays under it.
LOGIN_MAX_FAILURES = 3
LOGIN_FAILURE_WINDOW = 3
PASSWORD = "correct horse battery"


class AuthApi:
    """A test's view of one auth service: the calls, plus every secret the tests used."""

    def __init__(self, server: ServiceProcess) -> None:
        self.server = server
        self.url = server.url
        self.http = httpx.Client(base_url=server.url, timeout=10.0)
        # Passwords and tokens the tests sent or received; none may appear in the log.
        self.secrets: set[str] = set()

    def remember(self, *values: str) -> None:
        self.secrets.update(v for v in values if v)

    def new_username(self, prefix: str = "u") -> str:
        return f"{prefix}{secrets.token_hex(5)}"

    def register(self, username: str, password: str = PASSWORD) -> httpx.Response:
        self.remember(password)
        return self.http.post("/auth/register", json={"username": username, "password": password})

    def new_user(self, password: str = PASSWORD) -> str:
        username = self.new_username()
        response = self.register(username, password)
        assert response.status_code == 201, response.text
        return username

    def login(self, username: str, password: str = PASSWORD, form: bool = False) -> httpx.Response:
        self.remember(password)
        if form:
            data = {"grant_type": "password", "username": username, "password": password}
            response = self.http.post("/auth/login", data=data)
        else:
            response = self.http.post(
                "/auth/login", json={"username": username, "password": password}
            )
        self._remember_tokens(response)
        return response

    def tokens(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = self.login(username, password)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def refresh(self, refresh_token: str) -> httpx.Response:
        response = self.http.post("/auth/refresh", json={"refresh_token": refresh_token})
        self._remember_tokens(response)
        return response

    def logout(self, refresh_token: str) -> httpx.Response:
        return self.http.post("/auth/logout", json={"refresh_token": refresh_token})

    def me(self, access_token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        return self.http.get("/auth/me", headers=headers)

    def _remember_tokens(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            body = response.json()
            self.remember(body["access_token"], body["refresh_token"])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def auth_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database on each backend (module scope)."""
    if request.param == "postgres":
        require_postgres()
    yield from make_db_url(request.param, "auth_test", tmp_path_factory.mktemp("authdb"))


@pytest.fixture(scope="module")
def auth_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("authlogs")


@pytest.fixture(scope="module")
def auth_env(jwt_env: dict[str, str], auth_db_url: str) -> dict[str, str]:
    return {
        **jwt_env,
        "AUTH_DB_URL": auth_db_url,
        "LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
        "LOGIN_FAILURE_WINDOW": str(LOGIN_FAILURE_WINDOW),
        # Every test here registers and fails logins from 127.0.0.1: the per-address limits
        # are off (0) on this server, and proven on servers of their own (test_limits.py).
        "REGISTER_MAX_PER_ADDRESS": "0",
        "LOGIN_MAX_PER_ADDRESS": "0",
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture(scope="module")
def auth_api(auth_env: dict[str, str], auth_log_dir: Path) -> Iterator[AuthApi]:
    server = ServiceProcess("auth_service", auth_env, auth_log_dir).start()
    api = AuthApi(server)
    try:
        yield api
    finally:
        api.http.close()
        server.stop()
