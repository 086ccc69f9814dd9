"""Faults under load: no acknowledged write is ever lost, and the service comes back.

- The todo service SIGKILLed while writers are busy, on SQLite and on PostgreSQL: after a
  restart on the same database, every write it acknowledged is there. (The single-socket
  version, with idempotency keys replayed after the crash, is tests/todo/
  test_crash_idempotency.py; a database that drops its connections is tests/todo/
  test_lifecycle.py.)
- PostgreSQL itself restarted while writers are busy (a private cluster of the test's own,
  never the machine's shared one): the service answers `internal_error` while it is away
  and, without being restarted, writes again once it is back; nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_db_url
from tests.scale.writers import Ledger, check_ledger, listed_state, write_until_stopped
from tests.support import PostgresServer, ServiceProcess, require_postgres_binaries
from tests.todo.conftest import start_todo_service
from tests.todo.wsclient import Tokens, new_user_id

WRITERS = 12
LOAD_SECONDS = 1.5
# Closed-loop writers would trip the per-connection rate limit: these tests want volume.
NO_RATE_LIMIT = {"WS_RATE_LIMIT": "0"}


@contextlib.asynccontextmanager
async def busy_writers(
    server: ServiceProcess, tokens: Tokens, reconnect: bool
) -> AsyncIterator[tuple[list[Ledger], asyncio.Event]]:
    """WRITERS users writing on `server` until the event is set; on the way out, even on a
    failure, they are stopped and awaited."""
    ledgers = [Ledger(new_user_id()) for _ in range(WRITERS)]
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(write_until_stopped(server, tokens, ledger, stop, reconnect))
        for ledger in ledgers
    ]
    try:
        yield ledgers, stop
    finally:
        stop.set()
        done, pending = await asyncio.wait(writers, timeout=30)
        for task in pending:
            task.cancel()
        # A writer's own failure (a reply out of order) fails the test.
        failures = [task.exception() for task in done if task.exception() is not None]
        if failures:
            raise failures[0]  # type: ignore[misc]


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    yield from make_db_url(db_backend, "faults", tmp_path)


async def test_sigkill_under_load_loses_no_acknowledged_write(
    db_url: str, jwt_env: dict[str, str], jwt_secret: str, tmp_path: Path
) -> None:
    tokens = Tokens(jwt_secret)
    server = start_todo_service(jwt_env, db_url, tmp_path, **NO_RATE_LIMIT)
    try:
        async with busy_writers(server, tokens, reconnect=False) as (ledgers, _):
            await asyncio.sleep(LOAD_SECONDS)
            server.kill()  # mid-flight: writes in every state, from sent to half-committed
        acknowledged = sum(ledger.acks for ledger in ledgers)
        assert acknowledged >= WRITERS * 5, f"too little load: {acknowledged} writes"

        server.start()
        for ledger in ledgers:
            check_ledger(await listed_state(server, tokens, ledger.user), ledger)
    finally:
        server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    require_postgres_binaries()
    server = PostgresServer().init().start()
    yield server
    server.remove()


async def test_postgres_restarted_under_load_the_service_recovers_without_a_restart(
    private_postgres: PostgresServer, jwt_env: dict[str, str], jwt_secret: str, tmp_path: Path
) -> None:
    tokens = Tokens(jwt_secret)
    server = start_todo_service(jwt_env, private_postgres.url, tmp_path, **NO_RATE_LIMIT)
    try:
        pid = server.proc.pid if server.proc else None
        async with busy_writers(server, tokens, reconnect=True) as (ledgers, _):
            await asyncio.sleep(LOAD_SECONDS)
            before = sum(ledger.acks for ledger in ledgers)
            assert before >= WRITERS * 5, f"too little load: {before} writes"

            # As a crash would: no checkpoint, recovery from the WAL on the next start.
            await asyncio.to_thread(private_postgres.stop, "immediate")
            await asyncio.sleep(1.5)  # writers meet the outage
            down_failures = sum(ledger.failures for ledger in ledgers)
            await asyncio.to_thread(private_postgres.start)
            back_at = time.monotonic()
            await wait_for_every_writer_after(ledgers, back_at, timeout=30)

        assert down_failures > 0, "no write met the outage"
        assert server.proc is not None and server.proc.poll() is None and server.proc.pid == pid
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        for ledger in ledgers:
            check_ledger(await listed_state(server, tokens, ledger.user), ledger)
        assert "Traceback" not in unstructured_output(server)
    finally:
        server.stop()


async def wait_for_every_writer_after(ledgers: list[Ledger], since: float, timeout: float) -> None:
    """Until each writer has had a write acknowledged after `since` (the service is back)."""
    deadline = time.monotonic() + timeout
    while any(ledger.last_ack_at <= since for ledger in ledgers):
        waiting = [ledger.user for ledger in ledgers if ledger.last_ack_at <= since]
        assert time.monotonic() < deadline, f"no write acknowledged after the restart: {waiting}"
        await asyncio.sleep(0.1)


def unstructured_output(server: ServiceProcess) -> str:
    """What the service wrote outside its JSON log lines (e.g. a bare traceback from a
    crashed task): the outage must be logged, not blow up."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith('{"timestamp"'))
