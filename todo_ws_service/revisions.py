"""Per-user revisions, tombstones and deltas (CONTRACT.md section 6).

A todo keeps the revision of its last change (`todos.rev`); a deletion leaves a tombstone
with its revision. "What changed after N" is then two indexed range reads, and a user's
revision is the largest of those (or the horizon, below).

Where the next revision comes from depends on the backend:
- PostgreSQL (several replicas): every change bumps the user's row in `todo_revisions` in
  its own transaction. That row lock serializes the user's writes across replicas, so
  revisions follow commit order and no two changes share one (`bump`).
- SQLite (one process, the file's only writer): the process keeps each user's revision in
  memory, read once from the rows themselves (`latest_in_rows`), so a write costs no extra
  statement; `todo_revisions.rev` is not kept up to date there.

Tombstones are purged after `TODO_TOMBSTONE_TTL`; the user's `horizon` remembers the
newest purged revision, below which a resume gets a full list instead of a delta.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from todo_ws_service.sql import Tx, purge_bound

_BUMP = (
    "INSERT INTO todo_revisions (owner_id, rev, horizon) VALUES (?, 1, 0)"
    " ON CONFLICT (owner_id) DO UPDATE SET rev = todo_revisions.rev + 1 RETURNING rev"
)
_READ = "SELECT rev, horizon FROM todo_revisions WHERE owner_id = ?"
_LATEST_IN_ROWS = (
    "SELECT MAX(r) FROM (SELECT MAX(rev) AS r FROM todos WHERE owner_id = ?"
    " UNION ALL SELECT MAX(rev) FROM todo_tombstones WHERE owner_id = ?"
    " UNION ALL SELECT MAX(rev, horizon) FROM todo_revisions WHERE owner_id = ?) AS revs"
)
_TOMBSTONE = "INSERT INTO todo_tombstones (owner_id, todo_id, rev, deleted_at) VALUES (?, ?, ?, ?)"
_DELETED_SINCE = (
    "SELECT todo_id FROM todo_tombstones WHERE owner_id = ? AND rev > ? ORDER BY todo_id"
)
# Move each user's horizon up to the newest tombstone about to be forgotten, then forget.
# (On SQLite a user may have no row yet: the counter lives in memory there.)
_RAISE_HORIZONS = (
    "INSERT INTO todo_revisions (owner_id, rev, horizon)"
    " SELECT owner_id, MAX(rev), MAX(rev) FROM todo_tombstones WHERE id < ? GROUP BY owner_id"
    " ON CONFLICT (owner_id) DO UPDATE SET horizon = excluded.horizon"
)
_FORGET = "DELETE FROM todo_tombstones WHERE id < ?"


@dataclass(frozen=True, slots=True)
class Revision:
    rev: int
    horizon: int

    def can_answer(self, since: int) -> bool:
        """A delta from `since` is exact: no deletion after it forgotten, not in the future."""
        return self.horizon <= since <= self.rev


async def bump(tx: Tx, owner_id: int) -> int:
    """The user's next revision (locks the user's row until the transaction ends)."""
    row = await tx.one(_BUMP, owner_id)
    assert row is not None
    return int(row[0])


async def current(tx: Tx, owner_id: int) -> Revision:
    row = await tx.one(_READ, owner_id)
    return Revision(0, 0) if row is None else Revision(int(row[0]), int(row[1]))


async def latest_in_rows(tx: Tx, owner_id: int) -> int:
    """SQLite: the user's revision as the rows record it (the largest `rev` of their todos
    and tombstones, or the horizon once tombstones are purged; 0 for a new user)."""
    row = await tx.one(_LATEST_IN_ROWS, owner_id, owner_id, owner_id)
    return int(row[0]) if row is not None and row[0] is not None else 0


async def remember_deletion(tx: Tx, owner_id: int, todo_id: int, rev: int, now: float) -> None:
    await tx.one(_TOMBSTONE, owner_id, todo_id, rev, now)


async def deleted_since(tx: Tx, owner_id: int, since: int) -> list[int]:
    return [int(row[0]) for row in await tx.all(_DELETED_SINCE, owner_id, since)]


async def forget_deletions_before(tx: Tx, cutoff: float) -> bool:
    """Purge tombstones older than `cutoff` (Unix time), a chunk at a time, raising the
    horizons first; True when none is left to purge."""
    bound = await purge_bound(tx, "todo_tombstones", "deleted_at", cutoff)
    if bound is None:
        return True
    await tx.all(_RAISE_HORIZONS, bound)
    await tx.all(_FORGET, bound)
    return False


def delta_message(since: int, rev: int, upserted: list[Any], deleted: list[int]) -> dict[str, Any]:
    return {
        "type": "todos_delta",
        "since": since,
        "rev": rev,
        "data": {"upserted": upserted, "deleted": deleted},
    }
