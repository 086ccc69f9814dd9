"""Tortoise ORM set-up shared by the two services that own a database.

`open_database` applies pending migrations, then opens the connection pool; `close_database`
closes it. The migration step holds a lock (PostgreSQL: an advisory lock; SQLite: a lock
file beside the database), so replicas or workers starting together migrate once and the
others wait for it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

logger = logging.getLogger("shared.database")

# WAL lets readers run beside the one writer; NORMAL syncs at checkpoints, which keeps
# every committed write across a process crash (not across power loss: use
# `?synchronous=FULL` in the URL for that). busy_timeout waits out a concurrent writer.
SQLITE_DEFAULT_PRAGMAS = {"journal_mode": "WAL", "synchronous": "NORMAL", "busy_timeout": 5000}


def tortoise_config(db_url: str, app_label: str, pool_size: int = 10) -> dict[str, Any]:
    """Config for one app whose models live in `<app_label>.models`."""
    connection = expand_db_url(db_url)
    credentials = connection["credentials"]
    if connection["engine"].endswith("sqlite"):
        for pragma, value in SQLITE_DEFAULT_PRAGMAS.items():
            credentials.setdefault(pragma, value)
        Path(credentials["file_path"]).parent.mkdir(parents=True, exist_ok=True)
    else:
        credentials.setdefault("minsize", 1)
        credentials.setdefault("maxsize", pool_size)
    return {
        "connections": {"default": connection},
        "apps": {
            app_label: {
                "models": [f"{app_label}.models"],
                "migrations": f"{app_label}.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _is_postgres(config: dict[str, Any]) -> bool:
    return "asyncpg" in config["connections"]["default"]["engine"]


async def _migrate_under_file_lock(config: dict[str, Any]) -> None:
    """SQLite: workers of one host starting together take turns on a lock file beside the
    database (`flock`, released by the kernel if a process dies), so one migrates and the
    others then find nothing to do."""
    file_path = config["connections"]["default"]["credentials"]["file_path"]
    if file_path == ":memory:":
        await migrate(config=config)
        return
    lock = os.open(f"{file_path}.migrate-lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        await migrate(config=config)
    finally:
        os.close(lock)  # releases the lock


async def _migrate_under_lock(config: dict[str, Any], app_label: str) -> None:
    if not _is_postgres(config):
        await _migrate_under_file_lock(config)
        return
    import asyncpg

    creds = config["connections"]["default"]["credentials"]
    lock_key = zlib.crc32(f"migrate:{app_label}".encode())
    conn = await asyncpg.connect(
        host=creds.get("host"),
        port=creds.get("port"),
        user=creds.get("user"),
        password=creds.get("password"),
        database=creds.get("database"),
    )
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await migrate(config=config)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()


async def open_database(config: dict[str, Any]) -> None:
    """Migrate to the latest schema, then open the pool for this process."""
    app_label = next(iter(config["apps"]))
    await _migrate_under_lock(config, app_label)
    await Tortoise.close_connections()
    # Sanic's request tasks don't inherit Tortoise's context variable: use the global one.
    await Tortoise.init(config=config, _enable_global_fallback=True)
    # Open the connection now, not in the first request: Tortoise 1.1's SQLite client is
    # left hanging for good when the query that opens its connection is cancelled (a
    # readiness probe whose client gave up while the service was starting).
    await ping_database()
    logger.info("database ready", extra={"app": app_label})


async def close_database() -> None:
    await Tortoise.close_connections()


async def ping_database() -> str:
    """Readiness check: a trivial query on the default connection."""
    await connections.get("default").execute_query("SELECT 1")
    return "ok"
