"""The SQLite store: Python's sqlite3 on the event loop, with group commit.

A statement on an indexed local table takes ~10-40 us, while handing it to aiosqlite's
thread and back costs ~150 us and, under load, waits for the GIL: blocking the loop that
briefly is cheaper than the hop. The one process owns the file (several writers belong on
PostgreSQL), so `busy_timeout` never has to wait in practice, and each user's revision is
kept in memory (`revisions.latest_in_rows` reads it once).

Group commit: the writes of all sockets that arrive in one turn of the event loop share one
transaction (each commit appends whole pages to the WAL; a batch costs little more than one
write: bench/README.md). Futures are settled only after COMMIT, so nothing is acknowledged
before it is durable. One write's failure must not sink the others:
- a refusal (not found, version conflict) comes before the write touches anything;
- a keyed write (which may find its key taken after writing) runs inside a savepoint;
- anything else (a real error) rolls the batch back, and each write is run again alone.
The in-memory revisions are put back whenever writes are rolled back.

WAL checkpoints (copying the log back into the database, a few ms each) would land on
whichever commit crosses the threshold; they run in a thread instead, once a second. SQLite
starts the WAL over only after a checkpoint has copied *all* of it, which a checkpoint
running beside steady writes never does: the file grew without end (80 MB a second at full
speed). So each checkpoint copies the bulk beside the writes, then holds new commits for a
second pass over what came meanwhile (`_checkpoint`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from todo_ws_service import revisions
from todo_ws_service.idempotency import KeyReused, Replayed
from todo_ws_service.sql import Tx, Values, run_without_waiting
from todo_ws_service.store import Refused, Retention, T, TodoStore

CHECKPOINT_INTERVAL = 1.0
# A WAL that a burst made larger than this is cut back to it when it starts over.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# A user's todos as one JSON array, built by SQLite: no row tuples, no dicts, no encoding
# in Python (a list of 6 todos: ~25 % less time than fetching and encoding the rows). The
# keys and values are those of `store_types.as_todo`; the timestamps are stored as text in
# the wire format already, `completed` as 0/1. The rows reach the aggregate in the
# subquery's order (SQLite does not flatten an ordered subquery into an aggregate).
_TODOS_JSON = (
    "SELECT json_group_array(json_object('id', id, 'title', title,"
    " 'description', description, 'completed', json(iif(completed, 'true', 'false')),"
    " 'owner_id', owner_id, 'created_at', created_at, 'updated_at', updated_at,"
    " 'version', version))"
    " FROM (SELECT * FROM todos WHERE owner_id = ? ORDER BY id)"
)
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


# Users whose revision is kept in memory; beyond this the cache starts over (it is
# re-read from the rows on demand).
REVISION_CACHE_MAX = 100_000


class SqliteTodoStore(TodoStore):
    """sqlite3 on the event loop, with the PRAGMAs of the Tortoise connection."""

    can_hang = False

    def __init__(
        self, file_path: str, pragmas: dict[str, Any], retention: Retention, max_todos: int = 0
    ) -> None:
        super().__init__(retention, max_todos)
        # Autocommit mode: transactions are begun and ended explicitly below.
        self._db = self._connect(file_path, pragmas)
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._tx = SqliteTx(self._db)
        self._checkpointer = self._connect(file_path, pragmas)
        for db in (self._db, self._checkpointer):
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        self._checkpoints: asyncio.Task[None] | None = None
        self._pending: list[tuple[Work, asyncio.Future[Any], bool]] = []
        self._holding = False  # commits wait while a checkpoint finishes the WAL
        self._commits = 0  # transactions committed, to tell whether the WAL grew
        # Each user's latest revision, and what to put back if writes roll back.
        self._revs: dict[int, int] = {}
        self._undo_write: dict[int, int] = {}
        self._undo_batch: dict[int, int] = {}

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

    # ------------------------------------------------------------ revisions

    async def _latest_rev(self, tx: Tx, owner_id: int) -> int:
        rev = self._revs.get(owner_id)
        if rev is None:
            rev = self._revs[owner_id] = await revisions.latest_in_rows(tx, owner_id)
        return rev

    async def _next_rev(self, tx: Tx, owner_id: int) -> int:
        rev = await self._latest_rev(tx, owner_id)
        self._undo_write.setdefault(owner_id, rev)
        self._undo_batch.setdefault(owner_id, rev)
        self._revs[owner_id] = rev + 1
        return rev + 1

    async def _revision(self, tx: Tx, owner_id: int) -> revisions.Revision:
        horizon = (await revisions.current(tx, owner_id)).horizon
        return revisions.Revision(await self._latest_rev(tx, owner_id), horizon)

    def _put_back(self, undo: dict[int, int]) -> None:
        self._revs.update(undo)
        undo.clear()

    async def _todos_json(self, tx: Tx, owner_id: int) -> str:
        row = await tx.one(_TODOS_JSON, owner_id)
        assert row is not None
        return str(row[0])

    # ------------------------------------------------------------ transactions

    async def _snapshot(self, work: Callable[[Any], Awaitable[T]]) -> T:
        # Statements run back to back on the loop: no write can come between them.
        return run_without_waiting(work(self._tx))

    def _transaction(
        self, work: Callable[[Any], Awaitable[T]], keyed: bool = False
    ) -> asyncio.Future[T]:
        """Queue `work`; the work queued during one turn of the loop commits together."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, future, keyed))
        if len(self._pending) == 1 and not self._holding:
            loop.call_soon(self._commit_pending)
        return future

    def _commit_pending(self) -> None:
        if self._holding or not self._pending:
            return  # the checkpoint commits what waits when it is done
        batch, self._pending = self._pending, []
        if len(self._revs) > REVISION_CACHE_MAX:
            self._revs.clear()
        if len(batch) == 1:
            self._run_alone(*batch[0])
            return
        db = self._db
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._undo_batch.clear()
        try:
            db.execute("BEGIN IMMEDIATE")
            for work, future, keyed in batch:
                outcomes.append((future, *self._run_in_batch(work, keyed)))
            db.execute("COMMIT")
            self._commits += 1
        except Exception:
            # A write failed half-way, or the commit did: nothing of the batch is kept.
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._put_back(self._undo_batch)
            for work, future, keyed in batch:
                self._run_alone(work, future, keyed)
            return
        for future, result, error in outcomes:
            _settle(future, result, error)

    def _run_in_batch(self, work: Work, keyed: bool) -> tuple[Any, BaseException | None]:
        """One write inside the batch's transaction: (result, None) or (None, refusal)."""
        db = self._db
        self._undo_write.clear()
        if keyed:
            db.execute("SAVEPOINT one_write")
        try:
            result = run_without_waiting(work(self._tx))
        except Refused as refusal:  # nothing written
            if keyed:
                db.execute("ROLLBACK TO one_write")
                db.execute("RELEASE one_write")
            self._put_back(self._undo_write)
            return None, refusal
        except Exception as exc:
            if not keyed:
                raise  # it may have written half: the batch is redone write by write
            db.execute("ROLLBACK TO one_write")
            db.execute("RELEASE one_write")
            self._put_back(self._undo_write)
            return None, exc
        if keyed:
            db.execute("RELEASE one_write")
        return result, None

    def _run_alone(self, work: Work, future: asyncio.Future[Any], keyed: bool) -> None:
        db = self._db
        self._undo_write.clear()
        try:
            db.execute("BEGIN IMMEDIATE")
            result = run_without_waiting(work(self._tx))
            db.execute("COMMIT")
            self._commits += 1
        except Exception as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._put_back(self._undo_write)
            if not isinstance(exc, Refused | Replayed | KeyReused):
                logger.exception("a SQLite write failed")
            _settle(future, None, exc)
        else:
            _settle(future, result, None)

    # ------------------------------------------------------------ background work

    async def start(self) -> None:
        await super().start()
        self._checkpoints = asyncio.create_task(self._checkpoint_forever())

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            try:
                await self._checkpoint()
            except sqlite3.Error:
                logger.exception("WAL checkpoint failed")

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database completely, so that the next write starts it over.

        The first pass runs beside the writes; if any committed meanwhile, commits are held
        for a second pass over just their frames (a few ms, once a second).
        """
        commits = self._commits
        if await asyncio.to_thread(self._checkpoint_pass) and commits == self._commits:
            return
        self._holding = True
        try:
            await asyncio.to_thread(self._checkpoint_pass)
        finally:
            self._holding = False
            if self._pending:
                asyncio.get_running_loop().call_soon(self._commit_pending)

    def _checkpoint_pass(self) -> bool:
        """One passive checkpoint (in a thread); True if it copied every frame of the WAL
        as it was when the pass began."""
        row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        _busy, frames, copied = row
        return bool(frames <= copied)

    async def close(self) -> None:
        await super().close()
        if self._checkpoints is not None:
            self._checkpoints.cancel()
        self._db.close()
        self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._checkpointer.close()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
