"""A protocol-1.0 database upgrades in place, with its data (SQLite and PostgreSQL).

The database is built as release 1.0 left it: Tortoise migrations up to `0001_initial`
only, todos inserted with plain SQL as the 1.0 service wrote them. Then the service starts
on it (it migrates to the latest schema at start-up).

The decided behaviour for revisions of existing data: every old todo keeps its data
unchanged and gets `version` 1; each user's existing todos get the distinct revisions
1..n in id order, and the user's `rev` starts at n, their number of todos (0 for a user
with none). So the first `todos_list` has `rev` n, `?since=0` answers every old todo in
`upserted`, `?since=k` the todos after the k-th in id order, and the next write gets
rev n + 1.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from shared.database import tortoise_config
from tests.conftest import make_db_url
from tests.support import ServiceProcess
from tests.todo.conftest import start_todo_service
from tests.todo.wsclient import Tokens, new_user_id, open_socket, open_user_socket

SERVICE = "todo_ws_service"
ALICE, BOB, CAROL = new_user_id(), new_user_id(), new_user_id()  # Carol has no todos


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


# owner, title, description, completed, created_at, updated_at; the users' rows interleave.
OLD_TODOS: list[tuple[int, str, str | None, bool, datetime, datetime]] = [
    (ALICE, "Buy milk", "2 litres", False, at(20, 9), at(20, 9)),
    (BOB, "Call the plumber", None, True, at(20, 10), at(22, 8)),
    (ALICE, "Write the report", None, False, at(21, 11), at(23, 16)),
    (ALICE, "Ünïcødé ✓ title", "multi\nline", True, at(21, 12), at(24, 7)),
    (BOB, "Renew passport", "before March", False, at(22, 13), at(22, 13)),
    (ALICE, "Water the plants", "", False, at(23, 14), at(25, 10)),
    (BOB, "Pay rent", None, False, at(24, 15), at(24, 18)),
    (ALICE, "Book flights", "window seat", True, at(25, 9), at(25, 10)),
]


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from make_db_url(backend, "upgrade", tmp_path)


async def build_1_0_database(url: str) -> None:
    """The schema as release 1.0 left it: the first migration only."""
    try:
        await migrate(config=tortoise_config(url, SERVICE), target=f"{SERVICE}.0001_initial")
    finally:
        await Tortoise.close_connections()


async def insert_old_todos(url: str) -> list[dict[str, Any]]:
    """The 1.0 rows, inserted as the 1.0 service stored them; as a 1.1 client gets them."""
    rows: list[dict[str, Any]] = []
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite://"))
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(todos)")}
            assert columns == {"id", "owner_id", "title", "description", "completed"} | {
                "created_at",
                "updated_at",
            }, f"not the 1.0 schema: {columns}"
            for owner, title, description, completed, created, updated in OLD_TODOS:
                # 1.0 stored timestamps as ISO-8601 text, the wire format itself.
                (todo_id,) = db.execute(
                    "INSERT INTO todos (owner_id, title, description, completed, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        owner,
                        title,
                        description,
                        completed,
                        created.isoformat(),
                        updated.isoformat(),
                    ),
                ).fetchone()
                rows.append({"id": todo_id})
            db.commit()
        finally:
            db.close()
    else:
        conn = await asyncpg.connect(url)
        try:
            columns = {
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'todos'"
                )
            }
            assert "version" not in columns and "rev" not in columns, f"not 1.0: {columns}"
            for owner, title, description, completed, created, updated in OLD_TODOS:
                todo_id = await conn.fetchval(
                    "INSERT INTO todos (owner_id, title, description, completed, created_at,"
                    " updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    owner,
                    title,
                    description,
                    completed,
                    created,
                    updated,
                )
                rows.append({"id": todo_id})
        finally:
            await conn.close()
    for row, (owner, title, description, completed, created, updated) in zip(
        rows, OLD_TODOS, strict=True
    ):
        row.update(
            title=title,
            description=description,
            completed=completed,
            owner_id=owner,
            created_at=created,
            updated_at=updated,
            version=1,
        )
    return rows


def as_compared(todo: dict[str, Any]) -> dict[str, Any]:
    """A wire todo with its timestamps parsed (the text may spell one instant differently)."""
    return {
        **todo,
        "created_at": datetime.fromisoformat(todo["created_at"]),
        "updated_at": datetime.fromisoformat(todo["updated_at"]),
    }


async def open_resumed(server: ServiceProcess, token: str, since: int) -> dict[str, Any]:
    """The first message of a socket opened with `?since=`."""
    sock = await open_socket(server, token, since=since)
    try:
        return await sock.recv()
    finally:
        await sock.close()


async def test_a_1_0_database_upgrades_in_place_with_revisions_in_id_order(
    db_url: str, jwt_env: dict[str, str], jwt_secret: str, tmp_path: Path
) -> None:
    await build_1_0_database(db_url)
    old = await insert_old_todos(db_url)
    assert sorted(r["id"] for r in old) == [r["id"] for r in old], "ids follow insertion order"

    server = start_todo_service(jwt_env, db_url, tmp_path)  # migrates to the latest
    tokens = Tokens(jwt_secret)
    final_lists: dict[int, dict[str, Any]] = {}
    try:
        for user in (ALICE, BOB, CAROL):
            mine = [todo for todo in old if todo["owner_id"] == user]
            count = len(mine)
            sock = await open_user_socket(server, tokens, user)
            first = sock.initial  # type: ignore[attr-defined]
            assert [as_compared(t) for t in first["data"]] == mine, "old todos changed"
            assert first["rev"] == count, f"user with {count} old todos starts at rev {count}"

            # Revisions 1..n in id order: since=k answers exactly the todos after the k-th.
            for since in range(count + 1):
                delta = await open_resumed(server, tokens.valid(user), since)
                assert delta["type"] == "todos_delta", delta
                assert (delta["since"], delta["rev"]) == (since, count), delta
                upserted = sorted(delta["data"]["upserted"], key=lambda t: t["id"])
                assert [as_compared(t) for t in upserted] == mine[since:], (since, delta)
                assert delta["data"]["deleted"] == []

            # The next writes continue from n.
            made = await sock.request({"action": "create_todo", "payload": {"title": "new"}})
            assert made["type"] == "todo_created" and made["rev"] == count + 1, made
            assert made["data"]["version"] == 1
            assert all(made["data"]["id"] > t["id"] for t in old), "an id was reused"
            if mine:
                edited = await sock.request(
                    {
                        "action": "update_todo",
                        "todo_id": mine[0]["id"],
                        "payload": {"completed": not mine[0]["completed"]},
                        "if_version": 1,
                    }
                )
                assert edited["type"] == "todo_updated", edited
                assert (edited["rev"], edited["data"]["version"]) == (count + 2, 2), edited
                gone = await sock.request({"action": "delete_todo", "todo_id": mine[-1]["id"]})
                assert (gone["type"], gone["rev"]) == ("todo_deleted", count + 3), gone
                delta = await open_resumed(server, tokens.valid(user), count)
                assert delta["type"] == "todos_delta" and delta["rev"] == count + 3, delta
                changed = sorted(t["id"] for t in delta["data"]["upserted"])
                assert changed == sorted([made["data"]["id"], mine[0]["id"]]), delta
                assert delta["data"]["deleted"] == [mine[-1]["id"]], delta
            listed = await sock.request({"action": "get_all_todos"})
            final_lists[user] = {"type": "todos_list", "rev": listed["rev"], "data": listed["data"]}
            await sock.close()

        # A restart neither migrates again nor renumbers anything.
        server.restart()
        for user, listed in final_lists.items():
            again = await open_user_socket(server, tokens, user)
            assert again.initial == listed  # type: ignore[attr-defined]
            await again.close()
    finally:
        server.stop()
