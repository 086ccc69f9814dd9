"""Todo persistence: each write is one transaction, committed before it returns.

    TodoStore               the reads and writes the handlers need, written once (`sql.Tx`)
     ├── SqliteTodoStore    store_sqlite.py: sqlite3 on the event loop, group commit
     └── PostgresTodoStore  store_postgres.py: Tortoise's asyncpg pool

The tables and migrations are Tortoise's (`models.py`, `migrations/`); the hot path uses
plain SQL because Tortoise's query builder costs about as much as the query itself.

A write bumps the user's revision, changes the todo, records a tombstone (delete) and the
reply under its idempotency key (if any), all in one transaction: an acknowledged change
and its bookkeeping survive a crash together or not at all. It returns a `Change`: the
change's revision and its event, encoded once for every socket of the user. A create
first checks the user's number of todos (`TODO_MAX_PER_USER`) inside that transaction,
after the revision: the revision orders the user's writes (a row lock on PostgreSQL, the
event loop on SQLite), so two sockets creating at once can't both squeeze past the limit.
The count is noted per revision after each commit (`todo_counts.py`), so a create only
counts rows when another replica (or a forgotten note) came in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from todo_ws_service import idempotency, revisions
from todo_ws_service.idempotency import Key
from todo_ws_service.live_lists import LiveLists, list_frame
from todo_ws_service.sql import Tx, Values
from todo_ws_service.store_types import (
    COLUMNS,
    Change,
    LimitReached,
    NotFound,
    Refused,
    Retention,
    Row,
    VersionConflict,
    as_todo,
    encode,
)
from todo_ws_service.todo_counts import TodoCounts

# Re-exported: the store's callers (handlers, tests) import these from here.
__all__ = [
    "Change",
    "LimitReached",
    "NotFound",
    "Refused",
    "Retention",
    "Row",
    "TodoStore",
    "VersionConflict",
    "as_todo",
    "encode",
    "open_store",
]

T = TypeVar("T")

UPDATABLE = ("title", "description", "completed")

_LIST = f"SELECT {COLUMNS} FROM todos WHERE owner_id = ? ORDER BY id"  # noqa: S608
_CHANGED_SINCE = f"SELECT {COLUMNS} FROM todos WHERE owner_id = ? AND rev > ? ORDER BY id"  # noqa: S608
_INSERTED = "owner_id, title, description, completed, created_at, updated_at, version, rev"
_INSERT = f"INSERT INTO todos ({_INSERTED}) VALUES (?, ?, ?, ?, ?, ?, 1, ?) RETURNING {COLUMNS}"  # noqa: S608
_ONE = f"SELECT {COLUMNS} FROM todos WHERE id = ? AND owner_id = ?"  # noqa: S608
_DELETE = "DELETE FROM todos WHERE id = ? AND owner_id = ?"
_IF_VERSION = " AND version = ?"
_COUNT = "SELECT COUNT(*) FROM todos WHERE owner_id = ?"

logger = logging.getLogger("todo_ws_service.store")


class TodoStore(ABC):
    """The user's todos and revisions; every method is scoped to `owner_id`."""

    # False when the calls never wait on I/O (nothing for a timeout to interrupt).
    can_hang = True

    def __init__(self, retention: Retention, max_todos: int = 0) -> None:
        self.retention = retention
        self.max_todos = max_todos  # per user; 0: no limit
        self._lists = LiveLists()
        self._counts = TodoCounts()
        self._update_sql: dict[tuple[tuple[str, ...], bool], str] = {}
        self._purger: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ the backend

    @abstractmethod
    def _transaction(self, work: Callable[[Tx], Awaitable[T]], keyed: bool = False) -> Awaitable[T]:
        """Run `work` in a write transaction: committed if it returns, rolled back if not.

        `work` raises `Refused` only before it has written anything; `keyed` work may
        raise after writing (a repeated idempotency key is found last).
        """

    @abstractmethod
    async def _snapshot(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `work`'s reads on one consistent snapshot."""

    @staticmethod
    @abstractmethod
    def _timestamp() -> Any:
        """Now, as the backend stores `created_at` and `updated_at`."""

    @abstractmethod
    async def _next_rev(self, tx: Tx, owner_id: int) -> int:
        """The user's next revision, inside a write transaction (ordering the user's writes)."""

    @abstractmethod
    async def _revision(self, tx: Tx, owner_id: int) -> revisions.Revision:
        """The user's current revision and horizon, inside a read."""

    async def _latest_rev(self, tx: Tx, owner_id: int) -> int:
        """The user's current revision, inside a read (a list needs no horizon)."""
        return (await self._revision(tx, owner_id)).rev

    # ------------------------------------------------------------ reads

    async def list_frame(self, owner_id: int) -> tuple[int, str]:
        """The user's encoded `todos_list` and the revision it reflects."""

        async def read(tx: Tx) -> tuple[int, str]:
            rev = await self._latest_rev(tx, owner_id)
            return rev, await self._list_frame(tx, owner_id, rev)

        return await self._snapshot(read)

    async def sync_frame(self, owner_id: int, since: int | None) -> tuple[int, str]:
        """The encoded `todos_delta` after `since`, or the full `todos_list` when that can't
        be exact; and the revision it reflects."""

        async def read(tx: Tx) -> tuple[int, str]:
            revision = await self._revision(tx, owner_id)
            if since is None or not revision.can_answer(since):
                return revision.rev, await self._list_frame(tx, owner_id, revision.rev)
            changed = [as_todo(row) for row in await tx.all(_CHANGED_SINCE, owner_id, since)]
            deleted = await revisions.deleted_since(tx, owner_id, since)
            delta = revisions.delta_message(since, revision.rev, changed, deleted)
            return revision.rev, encode(delta)

        return await self._snapshot(read)

    async def _list_frame(self, tx: Tx, owner_id: int, rev: int) -> str:
        """The list at `rev` (read in the same snapshot): kept up to date, or read now."""
        frame = self._lists.frame(owner_id, rev)
        if frame is None:
            todos = await self._todos_json(tx, owner_id)
            frame = list_frame(todos, rev)
            self._lists.keep(owner_id, rev, todos)
        return frame

    async def _todos_json(self, tx: Tx, owner_id: int) -> str:
        """The user's todos in id order, as a JSON array of `Todo`s."""
        return orjson.dumps([as_todo(row) for row in await tx.all(_LIST, owner_id)]).decode()

    # ------------------------------------------------------------ writes

    async def create(
        self,
        owner_id: int,
        title: str,
        description: str | None,
        completed: bool,
        key: Key | None = None,
    ) -> Change:
        had = 0  # the user's todos before this one (when there is a limit)

        async def write(tx: Tx) -> Change:
            nonlocal had
            rev, now = await self._begin_change(tx, owner_id, key)
            if self.max_todos:
                had = await self._check_room(tx, owner_id, rev, key, now)
            stamp = self._timestamp()
            row = await tx.one(_INSERT, owner_id, title, description, completed, stamp, stamp, rev)
            assert row is not None
            return await self._finish_change(tx, owner_id, key, rev, "todo_created", row, now)

        change = await self._write(owner_id, write, key is not None)
        if self.max_todos and not change.replayed:
            self._counts.note(owner_id, change.rev, had + 1)
        return change

    async def update(
        self,
        owner_id: int,
        todo_id: int,
        changes: dict[str, Any],
        if_version: int | None = None,
        key: Key | None = None,
    ) -> Change:
        names = tuple(name for name in UPDATABLE if name in changes)
        sql = self._update_statement(names, if_version is not None)

        async def write(tx: Tx) -> Change:
            rev, now = await self._begin_change(tx, owner_id, key)
            params = [changes[name] for name in names]
            params += [self._timestamp(), rev, todo_id, owner_id]
            if if_version is not None:
                params.append(if_version)
            row = await tx.one(sql, *params)
            if row is None:
                await self._refuse(tx, owner_id, todo_id, key, now)
            assert row is not None
            return await self._finish_change(tx, owner_id, key, rev, "todo_updated", row, now)

        change = await self._write(owner_id, write, key is not None)
        if self.max_todos and not change.replayed:
            self._counts.moved(owner_id, change.rev, 0)
        return change

    async def delete(
        self, owner_id: int, todo_id: int, if_version: int | None = None, key: Key | None = None
    ) -> Change:
        sql = _DELETE + (_IF_VERSION if if_version is not None else "") + " RETURNING id"
        params = (todo_id, owner_id, if_version) if if_version is not None else (todo_id, owner_id)

        async def write(tx: Tx) -> Change:
            rev, now = await self._begin_change(tx, owner_id, key)
            if await tx.one(sql, *params) is None:
                await self._refuse(tx, owner_id, todo_id, key, now)
            await revisions.remember_deletion(tx, owner_id, todo_id, rev, now)
            return await self._finish_change(tx, owner_id, key, rev, "todo_deleted", todo_id, now)

        change = await self._write(owner_id, write, key is not None)
        if self.max_todos and not change.replayed:
            self._counts.moved(owner_id, change.rev, -1)
        return change

    async def _write(
        self, owner_id: int, work: Callable[[Tx], Awaitable[Change]], keyed: bool
    ) -> Change:
        try:
            change = await self._transaction(work, keyed)
        except idempotency.Replayed as repeat:
            # Rolled back: the repeat changed nothing. Its answer is the first one.
            rev = orjson.loads(repeat.reply)["rev"]
            return Change(rev, repeat.reply, replayed=True)
        self._lists.apply(owner_id, change)  # committed
        return change

    async def _begin_change(self, tx: Tx, owner_id: int, key: Key | None) -> tuple[int, float]:
        # The revision first: on PostgreSQL its row lock orders this user's writes, key
        # checks included.
        return await self._next_rev(tx, owner_id), time.time()

    async def _finish_change(
        self,
        tx: Tx,
        owner_id: int,
        key: Key | None,
        rev: int,
        kind: str,
        changed: Values | int,
        now: float,
    ) -> Change:
        """The change's event (`changed`: the todo's row, or a deleted todo's id), stored
        under its idempotency key if it has one."""
        if isinstance(changed, int):
            todo_id, todo = changed, None
            data = f'{{"todo_id":{todo_id}}}'
        else:
            as_json = encode(as_todo(changed))
            todo_id, todo, data = changed[0], as_json, as_json
        # The same text as encoding {"type", "rev", "data"}; the todo's JSON is kept too.
        encoded = f'{{"type":"{kind}","rev":{rev},"data":{data}}}'
        if key is not None:
            ttl = self.retention.idempotency_ttl
            await idempotency.remember(tx, owner_id, key, encoded, now, ttl)
        return Change(rev, encoded, todo_id=todo_id, todo=todo)

    async def _refuse(
        self, tx: Tx, owner_id: int, todo_id: int, key: Key | None, now: float
    ) -> None:
        """No row changed: raise (rolling back the revision) `VersionConflict` or `NotFound`,
        unless this is the repeat of a keyed write that did change it (`Replayed`)."""
        await self._replay_if_repeat(tx, owner_id, key, now)
        current = await tx.one(_ONE, todo_id, owner_id)
        if current is None:
            raise NotFound
        raise VersionConflict(as_todo(current))

    async def _check_room(
        self, tx: Tx, owner_id: int, rev: int, key: Key | None, now: float
    ) -> int:
        """The user's number of todos before this create (of revision `rev`); raise
        `LimitReached` at `max_todos`, unless this create is the repeat of a keyed one that
        got in (`Replayed`: its first answer)."""
        count = self._counts.before(owner_id, rev)
        if count is None:
            row = await tx.one(_COUNT, owner_id)
            assert row is not None
            count = int(row[0])
        if count < self.max_todos:
            return count
        await self._replay_if_repeat(tx, owner_id, key, now)
        raise LimitReached(self.max_todos)

    async def _replay_if_repeat(self, tx: Tx, owner_id: int, key: Key | None, now: float) -> None:
        """Before refusing a keyed write: raise `Replayed` if it repeats one that succeeded
        (or `KeyReused` if its key names another write)."""
        if key is not None:
            ttl = self.retention.idempotency_ttl
            await idempotency.replay_if_known(tx, owner_id, key, now, ttl)

    def _update_statement(self, names: tuple[str, ...], guarded: bool) -> str:
        """UPDATE for this set of columns (built once per combination, then cached)."""
        sql = self._update_sql.get((names, guarded))
        if sql is None:
            sets = "".join(f"{name} = ?, " for name in names)  # names come from UPDATABLE
            sql = (
                f"UPDATE todos SET {sets}updated_at = ?, version = version + 1, rev = ?"  # noqa: S608
                f" WHERE id = ? AND owner_id = ?{_IF_VERSION if guarded else ''}"
                f" RETURNING {COLUMNS}"
            )
            self._update_sql[(names, guarded)] = sql
        return sql

    # ------------------------------------------------------------ retention

    async def purge(self, now: float | None = None) -> None:
        """Forget tombstones and idempotency keys past their time."""
        now = time.time() if now is None else now
        retention = self.retention

        async def forget_tombstones(tx: Tx) -> bool:
            return await revisions.forget_deletions_before(tx, now - retention.tombstone_ttl)

        async def forget_keys(tx: Tx) -> bool:
            return await idempotency.forget_before(tx, now - retention.idempotency_ttl)

        # A chunk per transaction (each awaits its commit, letting other work run between),
        # so a large purge never holds the loop or a lock for long.
        for forget in (forget_tombstones, forget_keys):
            done = False
            while not done:
                done = await self._transaction(forget)

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retention.purge_interval)
            try:
                await self.purge()
            except Exception:
                logger.exception("purging old tombstones and idempotency keys failed")

    async def start(self) -> None:
        """Start the background purge."""
        self._purger = asyncio.create_task(self._purge_forever(), name="todo-purge")

    async def close(self) -> None:
        """Stop background work and release the store's own connections."""
        if self._purger is not None:
            self._purger.cancel()


def open_store(
    tortoise_config: dict[str, Any], retention: Retention, max_todos: int = 0
) -> TodoStore:
    """The store for the database Tortoise was opened on (call after `open_database`).

    `max_todos`: the most todos a user may have (`TODO_MAX_PER_USER`); 0: no limit.
    """
    from todo_ws_service.store_postgres import PostgresTodoStore
    from todo_ws_service.store_sqlite import SqliteTodoStore

    connection = tortoise_config["connections"]["default"]
    if connection["engine"].endswith("sqlite"):
        credentials = dict(connection["credentials"])
        file_path = credentials.pop("file_path")
        return SqliteTodoStore(file_path, credentials, retention, max_todos)
    return PostgresTodoStore(retention, max_todos)
