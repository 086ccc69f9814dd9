"""The one interface the SQL of this service is written against, on SQLite and PostgreSQL.

The statements of a write (bump the user's revision, change the todo, record a tombstone or
an idempotency key) are written once, as `async` functions of a `Tx`, with `?`
placeholders. PostgreSQL runs them on an asyncpg connection inside a transaction; SQLite
runs them synchronously on the event loop inside its group-commit transaction, where no
statement ever waits, so `run_without_waiting` can drive the coroutine to its end in one
step.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Coroutine
from functools import lru_cache
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Values = tuple[Any, ...]


class Tx(Protocol):
    """A connection inside a transaction (or a read snapshot)."""

    async def one(self, sql: str, *params: Any) -> Values | None:
        """The first row of `sql`, or None."""

    async def all(self, sql: str, *params: Any) -> list[Values]:
        """Every row of `sql`."""


_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (our SQL has no `?` in literals)."""
    counter = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def run_without_waiting(coroutine: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (SQLite statements) to its result, now."""
    assert isinstance(coroutine, Coroutine)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a SQLite transaction awaited something: it must run in one step")


# At most this many rows go in one purge transaction (SQLite runs it on the event loop).
PURGE_CHUNK = 5000


async def purge_bound(tx: Tx, table: str, time_column: str, cutoff: float) -> int | None:
    """The id below which every row of `table` is older than `cutoff`, or None if none is.

    Rows get ids in the order they are written, so the expired rows are (nearly) a prefix
    of the ids: everything before the first row that has not expired. Where clocks of
    several replicas disagree a row may be kept a little longer, never dropped early.
    Bounded to `PURGE_CHUNK` rows. `table` and `time_column` are constants of the caller.
    """
    first = await tx.one(f"SELECT MIN(id) FROM {table}")  # noqa: S608
    if first is None or first[0] is None:
        return None
    alive = await tx.one(
        f"SELECT id FROM {table} WHERE {time_column} >= ? ORDER BY id LIMIT 1",  # noqa: S608
        cutoff,
    )
    if alive is None:
        last = await tx.one(f"SELECT MAX(id) FROM {table}")  # noqa: S608
        assert last is not None
        bound = int(last[0]) + 1
    else:
        bound = int(alive[0])
    bound = min(bound, int(first[0]) + PURGE_CHUNK)
    return bound if bound > int(first[0]) else None


async def purge_prefix(tx: Tx, table: str, time_column: str, cutoff: float) -> bool:
    """Delete one chunk of the expired prefix of `table`; True when nothing is left."""
    bound = await purge_bound(tx, table, time_column, cutoff)
    if bound is None:
        return True
    await tx.all(f"DELETE FROM {table} WHERE id < ?", bound)  # noqa: S608
    return False
