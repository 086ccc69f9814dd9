"""CORS_ORIGINS on the gateway and on each service reached directly (real processes, HTTP).

The CORS stack allows APP and OTHER everywhere; the auth service alone also allows
AUTH_ONLY, so that a request through the gateway shows whose policy a browser gets (the
gateway's). The package's own stack has CORS_ORIGINS unset: no CORS header anywhere.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.cors import MAX_AGE_SECONDS, parse_origins
from tests.shared.conftest import SERVICES, service_of
from tests.stack import LocalStack, start_stack
from tests.support import REPO_ROOT, ServiceProcess, new_jwt_secret

APP = "http://localhost:5173"
OTHER = "https://todo.example.com"
AUTH_ONLY = "http://auth-only.test:3000"
EVIL = "http://evil.test"

# A path per service that answers GET, and one that answers POST.
GET_PATH = {"gateway": "/auth/me", "auth": "/auth/me", "todo": "/ws_ep/asyncapi.json"}
POST_PATH = {"gateway": "/auth/login", "auth": "/auth/login", "todo": "/ws_ep/healthz"}


@pytest.fixture(scope="module")
def cors_stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[LocalStack]:
    running = start_stack(
        tmp_path_factory.mktemp("cors-stack"),
        jwt_env,
        auth_env={"CORS_ORIGINS": f"{APP},{OTHER},{AUTH_ONLY}"},
        every_env={"CORS_ORIGINS": f" {APP} , {OTHER.upper()} "},  # spaces and case are fine
    )
    yield running
    running.stop()


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def comma_set(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def preflight(url: str, origin: str, method: str = "POST", headers: str = "") -> httpx.Response:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=asked, timeout=30)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("origin", [APP, OTHER])
def test_an_allowed_origins_preflight_is_answered(
    cors_stack: LocalStack, service: str, origin: str
) -> None:
    url = service_of(cors_stack, service).url + POST_PATH[service]
    method = "POST" if service != "todo" else "GET"
    reply = preflight(url, origin, method, "Authorization, Content-Type, X-Request-ID")
    assert reply.status_code == 204
    headers = cors_headers(reply)
    assert headers["access-control-allow-origin"] == origin  # the exact origin, not *
    assert "origin" in comma_set(reply.headers["vary"])
    assert method.lower() in comma_set(headers["access-control-allow-methods"])
    assert comma_set(headers["access-control-allow-headers"]) == {
        "authorization",
        "content-type",
        "x-request-id",
    }
    assert headers["access-control-max-age"] == str(MAX_AGE_SECONDS)
    # Bearer tokens, not cookies: no credentials mode.
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize("service", SERVICES)
def test_a_preflight_asking_for_another_header_gets_only_the_allowed_ones(
    cors_stack: LocalStack, service: str
) -> None:
    url = service_of(cors_stack, service).url + GET_PATH[service]
    reply = preflight(url, APP, "GET", "x-evil, authorization")
    assert reply.status_code == 204
    # The browser compares: x-evil is missing, so it refuses the real request.
    assert comma_set(cors_headers(reply)["access-control-allow-headers"]) == {"authorization"}


@pytest.mark.parametrize("service", SERVICES)
def test_a_disallowed_origin_gets_no_cors_header(cors_stack: LocalStack, service: str) -> None:
    base = service_of(cors_stack, service).url
    reply = preflight(base + POST_PATH[service], EVIL)
    assert reply.status_code == 204
    assert cors_headers(reply) == {}
    # Answers differ by Origin, so a cache must keep them apart even when refused.
    assert "origin" in comma_set(reply.headers["vary"])
    got = httpx.get(base + GET_PATH[service], headers={"Origin": EVIL}, timeout=30)
    assert cors_headers(got) == {}
    assert "origin" in comma_set(got.headers["vary"])


@pytest.mark.parametrize("service", SERVICES)
def test_an_answer_to_an_allowed_origin_carries_the_headers(
    cors_stack: LocalStack, service: str
) -> None:
    base = service_of(cors_stack, service).url
    reply = httpx.get(base + GET_PATH[service], headers={"Origin": OTHER}, timeout=30)
    # /auth/me without a token is a 401: errors must be readable cross-origin too.
    assert reply.status_code == (401 if service != "todo" else 200)
    headers = cors_headers(reply)
    assert headers["access-control-allow-origin"] == OTHER
    assert comma_set(headers["access-control-expose-headers"]) == {"x-request-id", "retry-after"}
    assert "access-control-allow-methods" not in headers  # only on preflights
    assert "origin" in comma_set(reply.headers["vary"])


@pytest.mark.parametrize("service", SERVICES)
def test_no_origin_no_cors_headers(cors_stack: LocalStack, service: str) -> None:
    reply = httpx.get(service_of(cors_stack, service).url + GET_PATH[service], timeout=30)
    assert reply.status_code in {200, 401}
    assert cors_headers(reply) == {}


def test_a_real_cross_origin_login_through_the_gateway(cors_stack: LocalStack) -> None:
    user = {"username": f"cors_{time.monotonic_ns() % 10**9}", "password": "correct horse"}
    origin = {"Origin": APP}
    created = httpx.post(cors_stack.url + "/auth/register", json=user, headers=origin, timeout=30)
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == APP
    login = httpx.post(cors_stack.url + "/auth/login", json=user, headers=origin, timeout=30)
    assert login.status_code == 200
    assert login.headers["access-control-allow-origin"] == APP
    me = httpx.get(
        cors_stack.url + "/auth/me",
        headers={**origin, "Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=30,
    )
    assert me.json()["username"] == user["username"]
    assert me.headers["access-control-allow-origin"] == APP


def test_the_gateway_answers_preflights_itself_with_its_own_policy(
    cors_stack: LocalStack,
) -> None:
    # The auth service itself allows AUTH_ONLY...
    direct = preflight(cors_stack.auth.url + "/auth/login", AUTH_ONLY)
    assert cors_headers(direct)["access-control-allow-origin"] == AUTH_ONLY
    # ...the gateway does not, and its policy is the one a browser gets through it.
    through = preflight(cors_stack.url + "/auth/login", AUTH_ONLY)
    assert through.status_code == 204
    assert cors_headers(through) == {}
    proxied = httpx.get(cors_stack.url + "/auth/me", headers={"Origin": AUTH_ONLY}, timeout=30)
    assert proxied.status_code == 401
    assert cors_headers(proxied) == {}  # the service's own headers are dropped
    # The preflight never reached the auth service (it would log its request id).
    allowed = preflight(cors_stack.url + "/auth/no/such/call", APP, "DELETE")
    assert allowed.status_code == 204
    assert "delete" in comma_set(cors_headers(allowed)["access-control-allow-methods"])
    time.sleep(0.3)
    auth_log = cors_stack.auth.log_path.read_text()
    assert through.headers["x-request-id"] not in auth_log
    assert allowed.headers["x-request-id"] not in auth_log
    # A plain OPTIONS (no preflight) is still forwarded like any other method.
    plain = httpx.options(cors_stack.url + "/auth/login", timeout=30)
    assert plain.status_code == 204
    assert comma_set(plain.headers["allow"]) == {"post", "options"}  # the service's answer


def test_the_client_module_is_readable_from_an_allowed_origin(cors_stack: LocalStack) -> None:
    # <script type="module"> fetches in CORS mode: without the header the import fails.
    reply = httpx.get(cors_stack.url + "/todo-client.js", headers={"Origin": APP}, timeout=30)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    assert reply.headers["access-control-allow-origin"] == APP
    refused = httpx.get(cors_stack.url + "/todo-client.js", headers={"Origin": EVIL}, timeout=30)
    assert refused.status_code == 200  # the file is public; the browser refuses to use it
    assert cors_headers(refused) == {}


@pytest.mark.parametrize("service", SERVICES)
def test_without_cors_origins_there_are_no_cors_headers(stack: LocalStack, service: str) -> None:
    base = service_of(stack, service).url
    reply = preflight(base + POST_PATH[service], APP, "POST", "authorization")
    assert cors_headers(reply) == {}
    got = httpx.get(base + GET_PATH[service], headers={"Origin": APP}, timeout=30)
    assert cors_headers(got) == {}
    assert "origin" not in comma_set(got.headers.get("vary", ""))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        (" , ", []),
        ("http://localhost:5173", ["http://localhost:5173"]),
        (
            "HTTPS://Todo.Example.COM, http://[::1]:8080",
            ["https://todo.example.com", "http://[::1]:8080"],
        ),
        ("http://a.test,http://a.test", ["http://a.test"]),
        ("*", ["*"]),
        ("capacitor://localhost", ["capacitor://localhost"]),
    ],
)
def test_origins_are_parsed(value: str, expected: list[str]) -> None:
    assert parse_origins(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://localhost:5173/", "has no path"),
        ("https://example.com/app", "has no path"),
        ("localhost:5173", "not an origin"),
        ("https://example.com:443", "default port"),
        ("http://example.com:80", "default port"),
        ("http://example.com:99999", "out of range"),
        ("https://*.example.com", "wildcards"),
        ("*, http://a.test", "cannot be combined"),
        ("null", "'null'"),
    ],
)
def test_a_bad_origin_is_refused(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_origins(value)


@pytest.mark.parametrize("module", ["gateway", "auth_service", "todo_ws_service"])
def test_a_bad_origin_stops_the_service_at_start_up(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--port", "1"],
        cwd=REPO_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "JWT_SECRET": new_jwt_secret(),
            "CORS_ORIGINS": f"{APP}, http://localhost:5173/",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: CORS_ORIGINS: 'http://localhost:5173/': an origin has no path"
        " (drop the trailing part)"
    ]


def test_any_origin_is_answered_with_a_wildcard(tmp_path: Path) -> None:
    # The gateway alone: its own files and preflights need no upstream.
    with ServiceProcess("gateway", {"CORS_ORIGINS": "*"}, tmp_path) as gateway:
        module = httpx.get(gateway.url + "/todo-client.js", headers={"Origin": EVIL}, timeout=30)
        assert module.headers["access-control-allow-origin"] == "*"
        assert "origin" not in comma_set(module.headers.get("vary", ""))  # same for everyone
        plain = httpx.get(gateway.url + "/todo-client.js", timeout=30)
        assert plain.headers["access-control-allow-origin"] == "*"
        reply = preflight(gateway.url + "/auth/login", OTHER, "POST", "authorization")
        assert reply.status_code == 204
        assert cors_headers(reply)["access-control-allow-origin"] == "*"
        # `*` never covers Authorization: it is named.
        assert cors_headers(reply)["access-control-allow-headers"] == "authorization"
