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
