"""The PostgreSQL store: plain SQL on connections of Tortoise's asyncpg pool.

A write is one transaction on one pooled connection. Its first statement bumps the user's
revision row, which holds that row's lock until COMMIT: a user's writes, on every replica,
commit one after another in revision order. Reads that need several statements run in a
read-only REPEATABLE READ transaction, so the revision and the rows come from one snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tortoise import connections

from todo_ws_service import revisions
from todo_ws_service.sql import Tx, Values, numbered
from todo_ws_service.store import Retention, T, TodoStore


class PostgresTx:
    """`sql.Tx` on an asyncpg connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def one(self, sql: str, *params: Any) -> Values | None:
        row: Values | None = await self._conn.fetchrow(numbered(sql), *params)
        return row

    async def all(self, sql: str, *params: Any) -> list[Values]:
        rows: list[Values] = await self._conn.fetch(numbered(sql), *params)
        return rows


class PostgresTodoStore(TodoStore):
    """Through the Tortoise connection's asyncpg pool (it replaces dead connections)."""

    def __init__(self, retention: Retention, max_todos: int = 0) -> None:
        super().__init__(retention, max_todos)
        self._client = connections.get("default")

    @staticmethod
    def _timestamp() -> datetime:
        return datetime.now(UTC)

    async def _next_rev(self, tx: Tx, owner_id: int) -> int:
        return await revisions.bump(tx, owner_id)

    async def _revision(self, tx: Tx, owner_id: int) -> revisions.Revision:
        return await revisions.current(tx, owner_id)

    async def _transaction(self, work: Callable[[Any], Awaitable[T]], keyed: bool = False) -> T:
        async with self._client.acquire_connection() as conn, conn.transaction():
            return await work(PostgresTx(conn))

    async def _snapshot(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async with (
            self._client.acquire_connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            return await work(PostgresTx(conn))
