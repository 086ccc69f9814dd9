"""Each service starts both ways the contract names: `python -m` and the Sanic CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess, new_jwt_secret


def service_env(module: str, tmp_path: Path) -> dict[str, str]:
    return {
        "auth_service": {
            "JWT_SECRET": new_jwt_secret(),
            "AUTH_DB_URL": f"sqlite://{tmp_path}/a.db",
        },
        "todo_ws_service": {
            "JWT_SECRET": new_jwt_secret(),
            "TODO_DB_URL": f"sqlite://{tmp_path}/t.db",
        },
        "gateway": {},
    }[module]


@pytest.mark.parametrize("sanic_cli", [False, True], ids=["python-m", "sanic-cli"])
@pytest.mark.parametrize("module", ["auth_service", "todo_ws_service", "gateway"])
def test_service_starts_answers_and_stops_cleanly(
    module: str, sanic_cli: bool, tmp_path: Path
) -> None:
    server = ServiceProcess(module, service_env(module, tmp_path), tmp_path, sanic_cli=sanic_cli)
    server.start()
    try:
        health = httpx.get(f"{server.url}/healthz", timeout=5)
        assert health.json() == {"status": "ok"}
        missing = httpx.get(f"{server.url}/no/such/path", timeout=5)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert missing.headers["x-request-id"]
    finally:
        code = server.stop()
    assert code == 0, server.logs()
    assert "Traceback" not in server.logs()
