"""Settings are read once from the environment and fail fast with one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.settings import AuthSettings, GatewaySettings, TodoSettings, load_settings
from tests.support import REPO_ROOT

STRONG = "s" * 32


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", STRONG)
    auth, todo, gateway = AuthSettings(), TodoSettings(), GatewaySettings()  # type: ignore[call-arg]
    assert (auth.jwt_issuer, auth.jwt_audience, auth.jwt_algorithm) == (
        "todo-auth",
        "todo-api",
        "HS256",
    )
    assert (auth.access_token_ttl, auth.refresh_token_ttl) == (900, 1_209_600)
    assert (auth.login_max_failures, auth.login_failure_window) == (10, 300)
    assert auth.auth_db_url.startswith("sqlite://data/")
    assert todo.todo_db_url.startswith("sqlite://data/")
    assert (todo.ws_rate_limit, todo.ws_rate_burst, todo.ws_max_message) == (30, 60, 65536)
    assert todo.redis_url is None
    assert gateway.auth_upstreams == ["http://127.0.0.1:8001"]
    assert gateway.todo_upstreams == ["http://127.0.0.1:8002"]


def test_every_service_has_the_head_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", STRONG)
    every = (AuthSettings(), TodoSettings(), GatewaySettings())  # type: ignore[call-arg]
    assert [settings.http_header_timeout for settings in every] == [10, 10, 10]
    monkeypatch.setenv("HTTP_HEADER_TIMEOUT", "2.5")
    assert GatewaySettings().http_header_timeout == 2.5


def test_upstream_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_UPSTREAMS", "http://a:1, http://b:2/ ,")
    assert GatewaySettings().todo_upstreams == ["http://a:1", "http://b:2"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JWT_SECRET": "short"}, "JWT_SECRET: must be at least 32 bytes"),
        ({}, "JWT_SECRET: Field required"),
        (
            {"JWT_SECRET": STRONG, "AUTH_DB_URL": "not-a-url"},
            "AUTH_DB_URL: not a usable database URL",
        ),
        ({"JWT_SECRET": STRONG, "ACCESS_TOKEN_TTL": "soon"}, "ACCESS_TOKEN_TTL:"),
        ({"JWT_SECRET": STRONG, "JWT_ALGORITHM": "none"}, "JWT_ALGORITHM:"),
        ({"JWT_SECRET": STRONG, "HTTP_HEADER_TIMEOUT": "0"}, "HTTP_HEADER_TIMEOUT:"),
    ],
)
def test_bad_setting_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        load_settings(AuthSettings)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: ")
    assert expected in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_secret_value_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "x" * 40
    monkeypatch.setenv("JWT_SECRET", secret)
    settings = TodoSettings()  # type: ignore[call-arg]
    assert secret not in repr(settings) and secret not in str(settings)


def test_bad_redis_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", STRONG)
    monkeypatch.setenv("REDIS_URL", "http://localhost:6379")
    with pytest.raises(SystemExit):
        load_settings(TodoSettings)


@pytest.mark.parametrize("module", ["auth_service", "todo_ws_service"])
def test_service_refuses_to_start_with_a_weak_secret(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--port", "1"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "JWT_SECRET": "tooshort"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: JWT_SECRET: must be at least 32 bytes"
    ]
