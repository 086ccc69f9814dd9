"""The service around the calls: JSON errors, OpenAPI, health, concurrency, clean logs.

The last test of this module checks the server's whole log for every password and token
the module's tests used, so keep it last.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.auth.conftest import PASSWORD, AuthApi

CONTRACT_CALLS = [
    ("/auth/register", "post", "201"),
    ("/auth/login", "post", "200"),
    ("/auth/refresh", "post", "200"),
    ("/auth/logout", "post", "204"),
    ("/auth/me", "get", "200"),
]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/auth/nope", 404, "not_found"),
        ("DELETE", "/auth/me", 405, "method_not_allowed"),
        ("GET", "/auth/login", 405, "method_not_allowed"),
        ("PUT", "/auth/register", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_are_json(
    auth_api: AuthApi, method: str, path: str, status: int, code: str
) -> None:
    response = auth_api.http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


def test_health_and_readiness(auth_api: AuthApi) -> None:
    assert auth_api.http.get("/healthz").json() == {"status": "ok"}
    ready = auth_api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    assert ref.startswith("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def test_openapi_describes_every_call(auth_api: AuthApi) -> None:
    response = auth_api.http.get("/auth/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    schemes = document["components"]["securitySchemes"]
    assert schemes["secured"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

    for path, method, success in CONTRACT_CALLS:
        operation = document["paths"][path][method]
        assert operation["operationId"].isidentifier()
        responses = operation["responses"]
        assert success in responses
        if success != "204":
            schema = responses[success]["content"]["application/json"]["schema"]
            assert _resolve(document, schema)["properties"]
        errors = [status for status in responses if status.startswith("4")]
        assert errors, f"{path} documents no error"
        for status in errors:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert set(_resolve(document, schema)["required"]) == {"detail", "code"}
        if method == "post":
            body = operation["requestBody"]
            assert body["required"] is True
            schema = _resolve(document, body["content"]["application/json"]["schema"])
            assert schema["required"]

    login_body = document["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    form = _resolve(document, login_body["application/x-www-form-urlencoded"]["schema"])
    assert {"username", "password"} <= set(form["required"])
    register = _resolve(
        document,
        document["paths"]["/auth/register"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ],
    )
    assert register["properties"]["username"]["pattern"] == "^[A-Za-z0-9_.-]+$"
    assert register["properties"]["password"]["minLength"] == 8
    assert document["paths"]["/auth/me"]["get"]["security"] == [{"secured": []}]
    assert {"/healthz", "/readyz"} <= set(document["paths"])


def test_openapi_document_is_valid_openapi_3(auth_api: AuthApi) -> None:
    """What SDK generators read must be a valid OpenAPI 3 document, refs resolving."""
    document = auth_api.http.get("/auth/openapi.json").json()
    validate(document)  # raises OpenAPIValidationError with the offending path


async def test_health_stays_fast_while_logins_hash(auth_api: AuthApi) -> None:
    usernames = [auth_api.new_user() for _ in range(8)]
    latencies: list[float] = []
    logins_done = asyncio.Event()

    async def log_in_repeatedly(client: httpx.AsyncClient, username: str) -> None:
        # One real login, then logins as users that don't exist: those cost a dummy-hash
        # verification and little else, so hashing is nearly all the work being done.
        response = await client.post(
            "/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        auth_api.remember(response.json()["access_token"], response.json()["refresh_token"])
        for _ in range(5):
            body = {"username": auth_api.new_username(), "password": PASSWORD}
            assert (await client.post("/auth/login", json=body)).status_code == 401

    async def poll_health(client: httpx.AsyncClient) -> None:
        while not logins_done.is_set():
            started = time.perf_counter()
            response = await client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
            await asyncio.sleep(0.01)

    limits = httpx.Limits(max_connections=8)
    async with (
        httpx.AsyncClient(base_url=auth_api.url, timeout=10, limits=limits) as logins,
        httpx.AsyncClient(base_url=auth_api.url, timeout=10) as health,
    ):
        await health.get("/healthz")  # connect before measuring
        poller = asyncio.create_task(poll_health(health))
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(log_in_repeatedly(logins, u) for u in usernames)), 60
            )
        finally:
            logins_done.set()
            await asyncio.wait_for(poller, 10)
        busy_for = time.perf_counter() - started

    # 48 argon2 verifications kept the server busy for a while, and /healthz was asked
    # many times meanwhile; every answer came promptly. (With hashing moved onto the event
    # loop, polls on PostgreSQL waited behind several hashes: 250-310 ms. On SQLite the
    # single database thread paces the logins, so there it catches only gross stalls.)
    assert busy_for > 0.2, busy_for
    assert len(latencies) >= 5, latencies
    assert max(latencies) < 0.2, sorted(latencies)[-5:]


def test_log_never_contains_passwords_or_tokens(auth_api: AuthApi) -> None:
    # A full cycle of its own, so this test means something even when run alone.
    username = auth_api.new_user(password="log-check password 1")
    assert auth_api.login(username, "log-check wrong password").status_code == 401
    pair = auth_api.tokens(username, "log-check password 1")
    rotated = auth_api.refresh(pair["refresh_token"]).json()
    assert auth_api.refresh(pair["refresh_token"]).status_code == 401  # reuse: logged
    assert auth_api.logout(rotated["refresh_token"]).status_code == 204
    assert auth_api.me(pair["access_token"]).status_code == 200

    log = auth_api.server.log_path.read_text(errors="replace")
    assert '"message":"login"' in log.replace(" ", "")  # the log really is being written
    leaked = [secret for secret in auth_api.secrets if secret in log]
    assert not leaked, f"{len(leaked)} secrets found in the server log"
    assert "argon2id" not in log  # nor a password hash
