"""Users for the scenarios: access tokens minted with the shared JWT secret (as the auth
service would), and todos written straight into the todo service's SQLite file.

Writing 450,000 todos through the WebSocket would take about a minute of the run; one
`executemany` takes a second or two. The rows are the ones the service itself would have
written (`version` 1, the user's revisions 1..n in id order, timestamps in the wire
format), so its revision bookkeeping reads them as its own. The service must be stopped
while this runs: it keeps revisions in memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from shared.settings import JwtSettings
from shared.tokens import AccessTokenCodec

TOKEN_TTL = 4 * 3600


class UserIds:
    """Fresh user ids for every run, so that no run inherits another's todos."""

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def take(self, count: int) -> list[int]:
        ids = list(range(self._next, self._next + count))
        self._next += count
        return ids


def mint_tokens(secret: str, user_ids: list[int]) -> list[str]:
    codec = AccessTokenCodec(JwtSettings(jwt_secret=SecretStr(secret)))
    return [codec.issue(uid, f"bench{uid}", TOKEN_TTL).token for uid in user_ids]


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[str, bool, bool]]:
    """(name, required, has default) of `table`'s columns."""
    rows = db.execute(f"PRAGMA table_info({table})").fetchall()
    return [(row[1], bool(row[3]) and not row[5], row[4] is not None) for row in rows]


def seed_todos(db_path: Path, user_ids: list[int], per_user: int) -> int:
    """Give each user `per_user` todos (revisions 1..per_user); returns rows written."""
    now = datetime.now(UTC).isoformat()
    known = {
        "owner_id": None,  # per row
        "title": None,
        "description": "seeded by bench/run.py",
        "completed": 0,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "rev": None,
    }
    db = sqlite3.connect(db_path)
    try:
        columns = [name for name, _, _ in _columns(db, "todos") if name != "id"]
        unknown = [
            name
            for name, required, has_default in _columns(db, "todos")
            if name not in known and name != "id" and required and not has_default
        ]
        if unknown:
            raise RuntimeError(f"todos has columns the seeder does not know: {unknown}")
        used = [name for name in columns if name in known]

        def rows() -> Iterator[tuple[object, ...]]:
            for uid in user_ids:
                for n in range(1, per_user + 1):
                    values = {**known, "owner_id": uid, "title": f"todo {n}", "rev": n}
                    yield tuple(values[name] for name in used)

        marks = ", ".join("?" for _ in used)
        with db:
            db.executemany(f"INSERT INTO todos ({', '.join(used)}) VALUES ({marks})", rows())
            revision_columns = {name for name, _, _ in _columns(db, "todo_revisions")}
            if {"owner_id", "rev", "horizon"} <= revision_columns:
                db.executemany(
                    "INSERT OR REPLACE INTO todo_revisions (owner_id, rev, horizon)"
                    " VALUES (?, ?, 0)",
                    ((uid, per_user) for uid in user_ids),
                )
        return len(user_ids) * per_user
    finally:
        db.close()
