"""The SQLite store's group commit, on a real SQLite file: writes that arrive together
commit together, each is acknowledged only once committed, a refused or bad one rolls back
alone (its revision too), and revisions stay consecutive."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from shared.database import close_database, open_database, tortoise_config
from todo_ws_service import store_sqlite
from todo_ws_service.idempotency import KeyReused, key_for
from todo_ws_service.store import NotFound, Retention, TodoStore, VersionConflict, open_store
from todo_ws_service.store_sqlite import SqliteTodoStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TodoStore]:
    config = tortoise_config(f"sqlite://{tmp_path / 'store.sqlite3'}", "todo_ws_service")
    await open_database(config)
    opened = open_store(config, Retention())
    assert isinstance(opened, SqliteTodoStore)
    await opened.start()
    yield opened
    await opened.close()
    await close_database()


def committed_titles(path: Path) -> list[str]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as db:
        return [title for (title,) in db.execute("SELECT title FROM todos ORDER BY id")]


def data(change: object) -> dict:  # type: ignore[type-arg]
    return orjson.loads(change.event)["data"]  # type: ignore[attr-defined,no-any-return]


async def listed(store: TodoStore, owner_id: int) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    """The user's revision and todos, as the store's `todos_list` frame carries them."""
    rev, frame = await store.list_frame(owner_id)
    return rev, orjson.loads(frame)["data"]


async def sync_message(store: TodoStore, owner_id: int, since: int) -> tuple[int, dict]:  # type: ignore[type-arg]
    rev, frame = await store.sync_frame(owner_id, since)
    return rev, orjson.loads(frame)


async def test_concurrent_writes_commit_together_with_consecutive_revisions(
    store: TodoStore, tmp_path: Path
) -> None:
    changes = await asyncio.gather(*(store.create(7, f"t{i}", None, False) for i in range(50)))
    rows = [data(c) for c in changes]
    assert sorted(r["title"] for r in rows) == sorted(f"t{i}" for i in range(50))
    assert len({r["id"] for r in rows}) == 50
    assert sorted(c.rev for c in changes) == list(range(1, 51))
    # Acknowledged means committed: a separate connection sees every row.
    assert sorted(committed_titles(tmp_path / "store.sqlite3")) == sorted(r["title"] for r in rows)

    updates = [store.update(7, r["id"], {"completed": True}) for r in rows[:10]]
    deletes = [store.delete(7, r["id"]) for r in rows[10:20]]
    results = await asyncio.gather(
        *updates, *deletes, store.delete(8, rows[30]["id"]), return_exceptions=True
    )
    assert all(data(r)["completed"] is True and data(r)["version"] == 2 for r in results[:10])
    assert isinstance(results[20], NotFound), "another owner's todo is not deleted"
    # The refused delete took no revision: the 20 changes are 51..70.
    assert sorted(r.rev for r in results[:20]) == list(range(51, 71))  # type: ignore[union-attr]
    rev, todos = await listed(store, 7)
    assert rev == 70 and len(todos) == 40
    assert (await listed(store, 8)) == (0, [])


async def test_a_failing_write_fails_alone(store: TodoStore, tmp_path: Path) -> None:
    good = [store.create(7, f"ok{i}", None, False) for i in range(5)]
    bad = store.create(7, None, None, False)  # type: ignore[arg-type]  # NOT NULL violated
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert isinstance(results[-1], sqlite3.IntegrityError)
    assert [data(r)["title"] for r in results[:-1]] == [f"ok{i}" for i in range(5)]
    assert committed_titles(tmp_path / "store.sqlite3") == [f"ok{i}" for i in range(5)]
    assert (await listed(store, 7))[0] == 5


async def test_a_conflict_in_a_batch_changes_nothing_and_reports_the_current_todo(
    store: TodoStore,
) -> None:
    todo = data(await store.create(7, "one", None, False))
    stale, fresh = await asyncio.gather(
        store.update(7, todo["id"], {"title": "stale"}, if_version=5),
        store.update(7, todo["id"], {"title": "fresh"}, if_version=1),
        return_exceptions=True,
    )
    assert isinstance(stale, VersionConflict) and stale.current["title"] == "one"
    assert data(fresh)["title"] == "fresh" and fresh.rev == 2  # type: ignore[union-attr]


async def test_a_keyed_write_repeated_in_the_same_batch_happens_once(store: TodoStore) -> None:
    key = key_for("k1", "create_todo", None, {"title": "once"})
    first, second = await asyncio.gather(
        store.create(7, "once", None, False, key), store.create(7, "once", None, False, key)
    )
    assert not first.replayed and second.replayed
    assert second.event == first.event and second.rev == first.rev == 1
    assert len((await listed(store, 7))[1]) == 1


async def test_purge_forgets_old_tombstones_and_raises_the_horizon(store: TodoStore) -> None:
    todo = data(await store.create(7, "gone soon", None, False))
    await store.delete(7, todo["id"])
    rev, delta = await sync_message(store, 7, 0)
    assert rev == 2 and delta["type"] == "todos_delta" and delta["data"]["deleted"] == [todo["id"]]
    await store.purge(now=10**12)  # far in the future: everything has expired
    rev, message = await sync_message(store, 7, 0)
    assert message["type"] == "todos_list" and message["rev"] == 2, "0 is below the horizon"
    rev, message = await sync_message(store, 7, 2)
    assert message["type"] == "todos_delta" and message["data"] == {"upserted": [], "deleted": []}


async def test_an_expired_key_is_free_again_even_before_the_purge(tmp_path: Path) -> None:
    config = tortoise_config(f"sqlite://{tmp_path / 'ttl.sqlite3'}", "todo_ws_service")
    await open_database(config)
    store = open_store(config, Retention(idempotency_ttl=0.05))
    try:
        key = key_for("k", "create_todo", None, {"title": "a"})
        first = await store.create(7, "a", None, False, key)
        await asyncio.sleep(0.1)
        again = await store.create(7, "a", None, False, key)
        assert not again.replayed and again.rev == first.rev + 1
        other = key_for("k", "delete_todo", 1, None)  # the same key, now live, another write
        with pytest.raises(KeyReused):
            await store.delete(7, data(first)["id"], None, other)
        assert len((await listed(store, 7))[1]) == 2, "the refused delete changed nothing"
    finally:
        await store.close()
        await close_database()


async def test_a_repeated_write_whose_todo_moved_on_replays_its_first_answer(
    store: TodoStore,
) -> None:
    todo = data(await store.create(7, "a", None, False))
    update_key = key_for("u", "update_todo", todo["id"], {"title": "b"})
    first_update = await store.update(7, todo["id"], {"title": "b"}, 1, update_key)
    delete_key = key_for("d", "delete_todo", todo["id"], None)
    first_delete = await store.delete(7, todo["id"], None, delete_key)
    # The todo is gone: without the keys these would be not_found.
    again = await store.update(7, todo["id"], {"title": "b"}, 1, update_key)
    assert again.replayed and again.event == first_update.event
    again = await store.delete(7, todo["id"], None, delete_key)
    assert again.replayed and again.event == first_delete.event
    with pytest.raises(NotFound):
        await store.delete(7, todo["id"], None, key_for("new", "delete_todo", todo["id"], None))
    assert (await listed(store, 7))[0] == 3, "no repeat took a revision"


async def test_the_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint beside steady writes never copies the whole WAL, and SQLite only starts
    a WAL over once one has: the file grew for as long as writes kept coming (80 MB a
    second at full speed). It must start over (and be cut back to its limit) while the
    writes go on, and every acknowledged write must be in the database."""
    monkeypatch.setattr(store_sqlite, "CHECKPOINT_INTERVAL", 0.1)
    monkeypatch.setattr(store_sqlite, "WAL_SIZE_LIMIT", 64 * 1024)
    path = tmp_path / "steady.sqlite3"
    wal = tmp_path / "steady.sqlite3-wal"
    config = tortoise_config(f"sqlite://{path}", "todo_ws_service")
    await open_database(config)
    store = open_store(config, Retention())
    await store.start()
    sizes: list[int] = []
    kept: list[str] = []
    stop = asyncio.get_running_loop().time() + 2.0

    async def write(owner_id: int) -> None:
        n = 0
        while asyncio.get_running_loop().time() < stop:
            gone = data(await store.create(owner_id, "gone", None, False))
            await store.delete(owner_id, gone["id"])
            if n % 50 == 0:
                kept.append(
                    data(await store.create(owner_id, f"{owner_id}-{n}", None, False))["title"]
                )
            n += 1

    async def watch() -> None:
        while asyncio.get_running_loop().time() < stop:
            sizes.append(wal.stat().st_size)
            await asyncio.sleep(0.02)

    try:
        await asyncio.gather(*(write(owner_id) for owner_id in range(8)), watch())
    finally:
        await store.close()
        await close_database()
    shrunk = sum(1 for before, after in itertools.pairwise(sizes) if after < before)
    assert shrunk >= 3, f"the WAL never started over: sizes {sizes[::10]}"
    assert kept and set(kept) <= set(committed_titles(path)), "an acknowledged write is missing"


async def test_lists_kept_in_memory_match_the_database_after_any_writes(
    store: TodoStore, tmp_path: Path
) -> None:
    """`live_lists.py` keeps each user's list up to date from committed changes. After
    every round of random writes (batched together, some refused, some keyed repeats),
    the list the store sends must be what a fresh read of the file gives."""
    rng = random.Random(11)
    path = tmp_path / "store.sqlite3"

    def from_file(owner_id: int) -> list[dict]:  # type: ignore[type-arg]
        with sqlite3.connect(path) as db:
            (text,) = db.execute(store_sqlite._TODOS_JSON, (owner_id,)).fetchone()
        return orjson.loads(text)  # type: ignore[no-any-return]

    ids: dict[int, list[int]] = {7: [], 8: []}
    for round_ in range(40):
        writes = []
        for _ in range(rng.randrange(1, 8)):
            owner_id = rng.choice((7, 8))
            known = ids[owner_id]
            kind = rng.random()
            if kind < 0.4 or not known:
                key = key_for(f"k{rng.randrange(5)}", "create_todo", None, {"title": "x"})
                writes.append(store.create(owner_id, "x", None, False, key if kind < 0.1 else None))
            elif kind < 0.7:
                todo_id = rng.choice([*known, 999_999])  # sometimes not found
                writes.append(store.update(owner_id, todo_id, {"title": f"r{round_}"}))
            else:
                writes.append(store.delete(owner_id, rng.choice(known)))
        for result in await asyncio.gather(*writes, return_exceptions=True):
            if isinstance(result, BaseException):
                assert isinstance(result, NotFound | KeyReused), result
                continue
            message = orjson.loads(result.event)
            if message["type"] == "todo_created":
                ids[message["data"]["owner_id"]].append(message["data"]["id"])
        for owner_id in ids:
            _, todos = await listed(store, owner_id)
            assert todos == from_file(owner_id), f"round {round_}, user {owner_id}"
            ids[owner_id] = [todo["id"] for todo in todos]
