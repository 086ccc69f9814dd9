"""Todo persistence: one SQL statement per action, through Tortoise's connection.

The table and its migrations are Tortoise's (`models.py`, `migrations/`); the queries on
the hot path are plain SQL on the same connection because Tortoise's query builder costs
about as much as the query itself here. Each statement runs outside any transaction, so
it is committed when it returns: a reply is only sent for a committed write.

Rows come back as dicts in the wire shape of `messages.Todo` (timestamps as ISO 8601 UTC
strings on SQLite, datetimes on PostgreSQL; orjson writes both the same way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

Row = dict[str, Any]

COLUMNS = "id, title, description, completed, owner_id, created_at, updated_at"
UPDATABLE = ("title", "description", "completed")


class TodoStore:
    """The four queries the service needs, for the dialect of the default connection."""

    def __init__(self, client: BaseDBAsyncClient | None = None) -> None:
        self._client = client or connections.get("default")
        self._sqlite = self._client.capabilities.dialect == "sqlite"
        self._update_sql: dict[tuple[str, ...], str] = {}
        p = self._placeholder
        self._list_sql = f"SELECT {COLUMNS} FROM todos WHERE owner_id = {p(1)} ORDER BY id"  # noqa: S608
        self._insert_sql = (
            "INSERT INTO todos (owner_id, title, description, completed, created_at, updated_at)"  # noqa: S608
            f" VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)}, {p(5)}, {p(5)}) RETURNING {COLUMNS}"
        )
        self._delete_sql = f"DELETE FROM todos WHERE id = {p(1)} AND owner_id = {p(2)} RETURNING id"  # noqa: S608

    def _placeholder(self, n: int) -> str:
        return "?" if self._sqlite else f"${n}"

    def _now(self) -> Any:
        now = datetime.now(UTC)
        # SQLite stores text: write the wire format itself, so reads need no conversion.
        return now.isoformat() if self._sqlite else now

    def _rows(self, rows: list[Row]) -> list[Row]:
        if self._sqlite:
            for row in rows:
                row["completed"] = bool(row["completed"])
        return rows

    async def list_for(self, owner_id: int) -> list[Row]:
        """The user's todos in id order."""
        return self._rows(await self._client.execute_query_dict(self._list_sql, [owner_id]))

    async def create(
        self, owner_id: int, title: str, description: str | None, completed: bool
    ) -> Row:
        """Insert and return the new row."""
        values = [owner_id, title, description, completed, self._now()]
        if self._sqlite:
            # `?` placeholders are positional: the timestamp goes in twice.
            values.append(values[-1])
        rows = await self._client.execute_query_dict(self._insert_sql, values)
        return self._rows(rows)[0]

    async def update(self, owner_id: int, todo_id: int, changes: dict[str, Any]) -> Row | None:
        """Apply `changes` to the user's todo; the updated row, or None if there is none."""
        names = tuple(name for name in UPDATABLE if name in changes)
        sql = self._update_sql.get(names) or self._build_update(names)
        values = [changes[name] for name in names]
        values += [self._now(), todo_id, owner_id]
        rows = await self._client.execute_query_dict(sql, values)
        return self._rows(rows)[0] if rows else None

    def _build_update(self, names: tuple[str, ...]) -> str:
        p = self._placeholder
        sets = [f"{name} = {p(i)}" for i, name in enumerate(names, 1)]
        n = len(names)
        sets.append(f"updated_at = {p(n + 1)}")
        sql = (
            f"UPDATE todos SET {', '.join(sets)}"  # noqa: S608 - names come from UPDATABLE
            f" WHERE id = {p(n + 2)} AND owner_id = {p(n + 3)} RETURNING {COLUMNS}"
        )
        self._update_sql[names] = sql
        return sql

    async def delete(self, owner_id: int, todo_id: int) -> bool:
        """Delete the user's todo; False if the user has no such todo."""
        rows = await self._client.execute_query_dict(self._delete_sql, [todo_id, owner_id])
        return bool(rows)
