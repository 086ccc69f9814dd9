"""The SQLite store's group commit, on a real SQLite file: writes that arrive together
commit together, each is acknowledged only once committed, and a bad one fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.database import close_database, open_database, tortoise_config
from todo_ws_service.store import SqliteTodoStore, TodoStore, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TodoStore]:
    config = tortoise_config(f"sqlite://{tmp_path / 'store.sqlite3'}", "todo_ws_service")
    await open_database(config)
    opened = open_store(config)
    assert isinstance(opened, SqliteTodoStore)
    await opened.start()
    yield opened
    await opened.close()
    await close_database()


def committed_titles(path: Path) -> list[str]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as db:
        return [title for (title,) in db.execute("SELECT title FROM todos ORDER BY id")]


async def test_concurrent_writes_commit_together_and_each_gets_its_row(
    store: TodoStore, tmp_path: Path
) -> None:
    rows = await asyncio.gather(*(store.create(7, f"t{i}", None, False) for i in range(50)))
    assert sorted(r["title"] for r in rows) == sorted(f"t{i}" for i in range(50))
    assert len({r["id"] for r in rows}) == 50
    # Acknowledged means committed: a separate connection sees every row.
    assert sorted(committed_titles(tmp_path / "store.sqlite3")) == sorted(r["title"] for r in rows)

    updates = [store.update(7, r["id"], {"completed": True}) for r in rows[:10]]
    deletes = [store.delete(7, r["id"]) for r in rows[10:20]]
    results = await asyncio.gather(*updates, *deletes, store.delete(8, rows[30]["id"]))
    assert all(r is not None and r["completed"] is True for r in results[:10])
    assert results[10:20] == [True] * 10
    assert results[20] is False, "another owner's todo is not deleted"
    assert len(await store.list_for(7)) == 40


async def test_a_failing_write_fails_alone(store: TodoStore, tmp_path: Path) -> None:
    good = [store.create(7, f"ok{i}", None, False) for i in range(5)]
    bad = store.create(7, None, None, False)  # type: ignore[arg-type]  # NOT NULL violated
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert isinstance(results[-1], sqlite3.IntegrityError)
    assert [r["title"] for r in results[:-1]] == [f"ok{i}" for i in range(5)]  # type: ignore[index]
    assert committed_titles(tmp_path / "store.sqlite3") == [f"ok{i}" for i in range(5)]
