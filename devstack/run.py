"""Start auth (8001), todo (8002) and the gateway (8000) with honcho, SQLite under ./data.

The JWT secret is generated once and kept in `data/jwt_secret` (mode 0600), so a restart
keeps issued tokens valid. Logs are one readable line each (`LOG_FORMAT=text`, unless the
environment sets it); honcho prefixes each line with the service's name and stops every
process on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from honcho.manager import Manager

SERVICES = {"auth": ("auth_service", 8001), "todo": ("todo_ws_service", 8002)}
GATEWAY_PORT = 8000


def load_or_create_secret(data_dir: Path) -> str:
    """The dev stack's JWT secret: read from `data_dir/jwt_secret`, created on first run."""
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def stack_environment(data_dir: Path, secret: str) -> dict[str, dict[str, str]]:
    """The environment each service gets, by honcho process name.

    Auth and todo always bind loopback; only the gateway faces the browser."""
    # Readable one-line logs for people (LOG_FORMAT=json in the environment keeps JSON).
    common = {"LOG_FORMAT": "text", **os.environ, "PYTHONUNBUFFERED": "1"}
    services = {
        **common,
        "JWT_SECRET": secret,
        "PROXIES_COUNT": "1",  # the gateway is in front: trust its X-Forwarded-For
    }
    return {
        "auth": {**services, "AUTH_DB_URL": f"sqlite://{data_dir / 'auth.sqlite3'}"},
        "todo": {**services, "TODO_DB_URL": f"sqlite://{data_dir / 'todo.sqlite3'}"},
        "gateway": {
            **common,
            "AUTH_UPSTREAMS": f"http://127.0.0.1:{SERVICES['auth'][1]}",
            "TODO_UPSTREAMS": f"http://127.0.0.1:{SERVICES['todo'][1]}",
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address the gateway binds")
    parser.add_argument("--data", default="data", help="folder for SQLite files and the secret")
    args = parser.parse_args(argv)

    data_dir = Path(args.data).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = stack_environment(data_dir, load_or_create_secret(data_dir))
    python = sys.executable

    manager = Manager()
    for name, (module, port) in SERVICES.items():
        command = f"{python} -m {module} --host 127.0.0.1 --port {port}"
        manager.add_process(name, command, env=env[name])
    gateway = f"{python} -m gateway --host {args.host} --port {GATEWAY_PORT}"
    manager.add_process("gateway", gateway, env=env["gateway"])
    print(f"todo stack starting: open http://localhost:{GATEWAY_PORT}", flush=True)
    manager.loop()
    sys.exit(manager.returncode)
