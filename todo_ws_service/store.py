"""Todo persistence: one SQL statement per action, committed before it returns.

    TodoStore             the four queries the handlers need
     ├── SqliteTodoStore  Python's sqlite3, called directly on the event loop
     └── PostgresTodoStore Tortoise's asyncpg pool

The table and its migrations are Tortoise's (`models.py`, `migrations/`); the hot path
uses plain SQL because Tortoise's query builder costs about as much as the query itself.
On SQLite it also skips aiosqlite: a statement on an indexed local table takes ~10-40 us,
while handing it to aiosqlite's thread and back costs ~150 us and, under load, waits for
the GIL. Blocking the loop that briefly is cheaper than the hop. The one process owns the
file (several writers belong on PostgreSQL), so `busy_timeout` never has to wait in
practice.

A write is committed before its call returns, and only then is it acknowledged. On
PostgreSQL each statement is its own transaction. On SQLite the writes of all sockets
that arrive in one turn of the event loop commit together (group commit): each commit
appends whole pages to the WAL, so sixteen inserts into the same pages cost little more
than one (bench/README.md: +17-20 % messages a second). Should the shared transaction
fail, each write is retried on its own, so a bad one fails alone. Rows come back as
dicts in the wire shape of `messages.Todo`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise import connections

Row = dict[str, Any]

COLUMNS = "id, title, description, completed, owner_id, created_at, updated_at"
INSERTED = "owner_id, title, description, completed, created_at, updated_at"
UPDATABLE = ("title", "description", "completed")
_PRAGMA_VALUE = re.compile(r"^[A-Za-z0-9_]+$")
CHECKPOINT_INTERVAL = 1.0
logger = logging.getLogger("todo_ws_service.store")


class TodoStore(ABC):
    """The user's todos; every method is scoped to `owner_id`."""

    _placeholder_style = "?"
    # False when the calls never wait on I/O (nothing for a timeout to interrupt).
    can_hang = True

    def __init__(self) -> None:
        p = self._p
        # Only placeholders and the fixed column list are formatted into these statements.
        self._list_sql = f"SELECT {COLUMNS} FROM todos WHERE owner_id = {p(1)} ORDER BY id"  # noqa: S608
        values = ", ".join(p(i) for i in range(1, 7))
        self._insert_sql = f"INSERT INTO todos ({INSERTED}) VALUES ({values}) RETURNING {COLUMNS}"  # noqa: S608
        where = f"WHERE id = {p(1)} AND owner_id = {p(2)}"
        self._delete_sql = f"DELETE FROM todos {where} RETURNING id"  # noqa: S608
        self._update_sql: dict[tuple[str, ...], str] = {}

    def _p(self, n: int) -> str:
        return "?" if self._placeholder_style == "?" else f"${n}"

    def update_sql(self, names: tuple[str, ...]) -> str:
        """UPDATE for this set of columns (built once per combination, then cached)."""
        sql = self._update_sql.get(names)
        if sql is None:
            p = self._p
            sets = [f"{name} = {p(i)}" for i, name in enumerate(names, 1)]
            n = len(names)
            sets.append(f"updated_at = {p(n + 1)}")
            sql = (
                f"UPDATE todos SET {', '.join(sets)}"  # noqa: S608 - names come from UPDATABLE
                f" WHERE id = {p(n + 2)} AND owner_id = {p(n + 3)} RETURNING {COLUMNS}"
            )
            self._update_sql[names] = sql
        return sql

    @staticmethod
    def update_values(changes: dict[str, Any]) -> tuple[tuple[str, ...], list[Any]]:
        names = tuple(name for name in UPDATABLE if name in changes)
        return names, [changes[name] for name in names]

    @abstractmethod
    async def list_for(self, owner_id: int) -> list[Row]:
        """The user's todos in id order."""

    @abstractmethod
    async def create(
        self, owner_id: int, title: str, description: str | None, completed: bool
    ) -> Row:
        """Insert and return the new row."""

    @abstractmethod
    async def update(self, owner_id: int, todo_id: int, changes: dict[str, Any]) -> Row | None:
        """Apply `changes` to the user's todo; the updated row, or None if there is none."""

    @abstractmethod
    async def delete(self, owner_id: int, todo_id: int) -> bool:
        """Delete the user's todo; False if the user has no such todo."""

    async def start(self) -> None:
        """Start background work the store needs."""
        return None

    async def close(self) -> None:
        """Release the store's own connection, if it has one."""
        return None


_NAMES = tuple(name.strip() for name in COLUMNS.split(","))
_COMPLETED = _NAMES.index("completed")


def _sqlite_todo(values: tuple[Any, ...]) -> Row:
    row = dict(zip(_NAMES, values, strict=True))
    row["completed"] = bool(values[_COMPLETED])  # SQLite has no boolean type
    return row


class SqliteTodoStore(TodoStore):
    """sqlite3 on the event loop, with the PRAGMAs of the Tortoise connection.

    WAL checkpoints (copying the log back into the database, a few ms each) would land on
    whichever commit crosses the threshold; they run in a thread instead, once a second.
    """

    can_hang = False

    def __init__(self, file_path: str, pragmas: dict[str, Any]) -> None:
        super().__init__()
        self._db = self._connect(file_path, pragmas)
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = self._connect(file_path, pragmas)
        self._checkpoints: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, Sequence[Any], asyncio.Future[Any]]] = []

    @staticmethod
    def _connect(file_path: str, pragmas: dict[str, Any]) -> sqlite3.Connection:
        # Autocommit: each statement is its own committed transaction.
        db = sqlite3.connect(file_path, isolation_level=None, check_same_thread=False)
        for name, value in pragmas.items():
            if _PRAGMA_VALUE.match(name) and _PRAGMA_VALUE.match(str(value)):
                db.execute(f"PRAGMA {name}={value}")
        return db

    async def start(self) -> None:
        self._checkpoints = asyncio.create_task(self._checkpoint_forever())

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            try:
                await asyncio.to_thread(
                    self._checkpointer.execute, "PRAGMA wal_checkpoint(PASSIVE)"
                )
            except sqlite3.Error:
                logger.exception("WAL checkpoint failed")

    @staticmethod
    def _now() -> str:
        # Stored as text in the wire format itself, so reads need no conversion.
        return datetime.now(UTC).isoformat()

    async def list_for(self, owner_id: int) -> list[Row]:
        return [_sqlite_todo(values) for values in self._db.execute(self._list_sql, (owner_id,))]

    def _write(self, sql: str, params: Sequence[Any]) -> asyncio.Future[Any]:
        """Queue a write; the writes queued during one turn of the loop commit together."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((sql, params, future))
        if len(self._pending) == 1:
            loop.call_soon(self._commit_pending)
        return future

    def _commit_pending(self) -> None:
        batch, self._pending = self._pending, []
        db = self._db
        if len(batch) > 1:
            try:
                db.execute("BEGIN IMMEDIATE")
                rows = [db.execute(sql, params).fetchone() for sql, params, _ in batch]
                db.execute("COMMIT")
            except Exception:
                # Try each on its own below, so one bad write fails alone.
                if db.in_transaction:
                    db.execute("ROLLBACK")
            else:
                for (_, _, future), row in zip(batch, rows, strict=True):
                    if not future.done():
                        future.set_result(row)
                return
        # One write, or a batch that failed: each in its own transaction, its own outcome.
        for sql, params, future in batch:
            try:
                row = db.execute(sql, params).fetchone()
            except Exception as exc:  # whatever it is, its writer must hear of it
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(row)

    async def create(
        self, owner_id: int, title: str, description: str | None, completed: bool
    ) -> Row:
        now = self._now()
        values = (owner_id, title, description, completed, now, now)
        return _sqlite_todo(await self._write(self._insert_sql, values))

    async def update(self, owner_id: int, todo_id: int, changes: dict[str, Any]) -> Row | None:
        names, values = self.update_values(changes)
        values += [self._now(), todo_id, owner_id]
        found = await self._write(self.update_sql(names), values)
        return None if found is None else _sqlite_todo(found)

    async def delete(self, owner_id: int, todo_id: int) -> bool:
        return await self._write(self._delete_sql, (todo_id, owner_id)) is not None

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
        self._db.close()
        self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._checkpointer.close()


class PostgresTodoStore(TodoStore):
    """Through the Tortoise connection's asyncpg pool (it replaces dead connections)."""

    _placeholder_style = "$"

    def __init__(self) -> None:
        super().__init__()
        self._client = connections.get("default")

    async def list_for(self, owner_id: int) -> list[Row]:
        return await self._client.execute_query_dict(self._list_sql, [owner_id])

    async def create(
        self, owner_id: int, title: str, description: str | None, completed: bool
    ) -> Row:
        now = datetime.now(UTC)
        values = [owner_id, title, description, completed, now, now]
        return (await self._client.execute_query_dict(self._insert_sql, values))[0]

    async def update(self, owner_id: int, todo_id: int, changes: dict[str, Any]) -> Row | None:
        names, values = self.update_values(changes)
        values += [datetime.now(UTC), todo_id, owner_id]
        rows = await self._client.execute_query_dict(self.update_sql(names), values)
        return rows[0] if rows else None

    async def delete(self, owner_id: int, todo_id: int) -> bool:
        return bool(await self._client.execute_query_dict(self._delete_sql, [todo_id, owner_id]))


def open_store(tortoise_config: dict[str, Any]) -> TodoStore:
    """The store for the database Tortoise was opened on (call after `open_database`)."""
    connection = tortoise_config["connections"]["default"]
    if connection["engine"].endswith("sqlite"):
        credentials = dict(connection["credentials"])
        file_path = credentials.pop("file_path")
        return SqliteTodoStore(file_path, credentials)
    return PostgresTodoStore()
