"""Settings fail fast: a bad environment stops `python -m auth_service` with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT, ServiceProcess, free_port, new_jwt_secret


def run_auth_service(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "AUTH_DB"))}
    return subprocess.run(
        [sys.executable, "-m", "auth_service", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"JWT_SECRET": "too-short-secret"}, "JWT_SECRET"),
        ({}, "JWT_SECRET"),
        ({"AUTH_DB_URL": "nosuchdb://somewhere/db"}, "AUTH_DB_URL"),
        ({"AUTH_DB_URL": "postgres://u@localhost:notaport/db"}, "AUTH_DB_URL"),
        ({"LOGIN_MAX_FAILURES": "-1"}, "LOGIN_MAX_FAILURES"),
        ({"HASH_QUEUE_MAX": "0"}, "HASH_QUEUE_MAX"),  # at least 1, as the contract says
        ({"REGISTER_MAX_PER_ADDRESS": "-1"}, "REGISTER_MAX_PER_ADDRESS"),
    ],
    ids=[
        "short-secret",
        "no-secret",
        "unknown-db-scheme",
        "bad-db-port",
        "negative-failures",
        "zero-hash-queue",
        "negative-register-limit",
    ],
)
def test_bad_settings_exit_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    full_env = {
        "JWT_SECRET": new_jwt_secret(),
        "AUTH_DB_URL": f"sqlite://{tmp_path / 'auth.sqlite3'}",
        **env,
    }
    if not env:
        del full_env["JWT_SECRET"]
    result = run_auth_service(full_env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}"), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    # The secret is never echoed back.
    assert env.get("JWT_SECRET", "\0") not in result.stderr


def test_two_workers_on_one_new_sqlite_file_migrate_once_and_serve(
    jwt_env: dict[str, str], tmp_path: Path
) -> None:
    """Both workers start together on a file with no tables: one migrates (under the lock
    file), the other waits and finds nothing left to do; the service then works."""
    env = {**jwt_env, "AUTH_DB_URL": f"sqlite://{tmp_path / 'auth.sqlite3'}"}
    server = ServiceProcess("auth_service", env, tmp_path)
    server.extra_args = ["--workers", "2"]
    try:
        server.start(timeout=60)
        user = {"username": "two_workers", "password": "a long enough password"}
        assert httpx.post(f"{server.url}/auth/register", json=user, timeout=30).status_code == 201
        login = httpx.post(f"{server.url}/auth/login", data=user, timeout=30)
        assert login.status_code == 200, login.text
        assert "already exists" not in server.logs()
    finally:
        server.stop()
