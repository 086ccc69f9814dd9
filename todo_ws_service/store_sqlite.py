"""The SQLite store: Python's sqlite3 on the event loop, with group commit.

A statement on an indexed local table takes ~10-40 us, while handing it to aiosqlite's
thread and back costs ~150 us and, under load, waits for the GIL: blocking the loop that
briefly is cheaper than the hop. The one process owns the file (several writers belong on
PostgreSQL), so `busy_timeout` never has to wait in practice.

Group commit: the writes of all sockets that arrive in one turn of the event loop share one
transaction, each inside its own savepoint, so one refused or failing write rolls back
alone while the others commit together (each commit appends whole pages to the WAL; a
batch costs little more than one write: bench/README.md). Futures are settled only after
COMMIT, so nothing is acknowledged before it is durable.

WAL checkpoints (copying the log back into the database, a few ms each) would land on
whichever commit crosses the threshold; they run in a thread instead, once a second.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from todo_ws_service.sql import Values, run_without_waiting
from todo_ws_service.store import Retention, T, TodoStore

CHECKPOINT_INTERVAL = 1.0
_PRAGMA_VALUE = re.compile(r"^[A-Za-z0-9_]+$")
logger = logging.getLogger("todo_ws_service.store")

Work = Callable[["SqliteTx"], Awaitable[Any]]


class SqliteTx:
    """`sql.Tx` on a sqlite3 connection: every call completes without suspending."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def one(self, sql: str, *params: Any) -> Values | None:
        row: Values | None = self._db.execute(sql, params).fetchone()
        return row

    async def all(self, sql: str, *params: Any) -> list[Values]:
        return self._db.execute(sql, params).fetchall()


class SqliteTodoStore(TodoStore):
    """sqlite3 on the event loop, with the PRAGMAs of the Tortoise connection."""

    can_hang = False

    def __init__(self, file_path: str, pragmas: dict[str, Any], retention: Retention) -> None:
        super().__init__(retention)
        # Autocommit mode: transactions are begun and ended explicitly below.
        self._db = self._connect(file_path, pragmas)
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._tx = SqliteTx(self._db)
        self._checkpointer = self._connect(file_path, pragmas)
        self._checkpoints: asyncio.Task[None] | None = None
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []

    @staticmethod
    def _connect(file_path: str, pragmas: dict[str, Any]) -> sqlite3.Connection:
        db = sqlite3.connect(file_path, isolation_level=None, check_same_thread=False)
        for name, value in pragmas.items():
            if _PRAGMA_VALUE.match(name) and _PRAGMA_VALUE.match(str(value)):
                db.execute(f"PRAGMA {name}={value}")
        return db

    @staticmethod
    def _timestamp() -> str:
        # Stored as text in the wire format itself, so reads need no conversion.
        return datetime.now(UTC).isoformat()

    async def _snapshot(self, work: Callable[[Any], Awaitable[T]]) -> T:
        # Statements run back to back on the loop: no write can come between them.
        return run_without_waiting(work(self._tx))

    def _transaction(self, work: Callable[[Any], Awaitable[T]]) -> asyncio.Future[T]:
        """Queue `work`; the work queued during one turn of the loop commits together."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, future))
        if len(self._pending) == 1:
            loop.call_soon(self._commit_pending)
        return future

    def _commit_pending(self) -> None:
        batch, self._pending = self._pending, []
        db = self._db
        # With one write there is nothing to isolate it from: no savepoint needed.
        isolate = len(batch) > 1
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for work, future in batch:
                if isolate:
                    db.execute("SAVEPOINT one_write")
                try:
                    result = run_without_waiting(work(self._tx))
                except Exception as exc:  # refused (not found, conflict, repeat) or failed
                    if isolate:
                        db.execute("ROLLBACK TO one_write")
                        db.execute("RELEASE one_write")
                    else:
                        db.execute("ROLLBACK")
                    outcomes.append((future, None, exc))
                else:
                    if isolate:
                        db.execute("RELEASE one_write")
                    outcomes.append((future, result, None))
            if db.in_transaction:
                db.execute("COMMIT")
        except Exception as exc:
            # The transaction itself failed: nothing of the batch is committed.
            logger.exception("a SQLite transaction failed")
            if db.in_transaction:
                db.execute("ROLLBACK")
            outcomes = [(future, None, exc) for _, future in batch]
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    async def start(self) -> None:
        await super().start()
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

    async def close(self) -> None:
        await super().close()
        if self._checkpoints is not None:
            self._checkpoints.cancel()
        self._db.close()
        self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._checkpointer.close()
