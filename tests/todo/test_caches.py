"""The two per-revision notes of the store: users' lists kept up to date (`live_lists.py`)
and todo counts (`todo_counts.py`). Both are right only at the revision they were taken at."""

from __future__ import annotations

import orjson

from todo_ws_service.live_lists import LiveLists, list_frame
from todo_ws_service.store_types import Change
from todo_ws_service.todo_counts import TodoCounts


def todo(todo_id: int, title: str = "t") -> str:
    return orjson.dumps({"id": todo_id, "title": title}).decode()


def listed(lists: LiveLists, owner_id: int, rev: int) -> list[dict] | None:  # type: ignore[type-arg]
    frame = lists.frame(owner_id, rev)
    if frame is None:
        return None
    message = orjson.loads(frame)
    assert message["type"] == "todos_list" and message["rev"] == rev
    return message["data"]  # type: ignore[no-any-return]


def test_a_kept_list_moves_on_with_each_committed_change() -> None:
    lists = LiveLists()
    lists.keep(7, 3, f"[{todo(1)},{todo(4)}]")
    assert listed(lists, 7, 3) == [{"id": 1, "title": "t"}, {"id": 4, "title": "t"}]
    assert listed(lists, 7, 2) is None and listed(lists, 8, 3) is None
    lists.apply(7, Change(4, "", todo_id=9, todo=todo(9)))  # created: at the end
    lists.apply(7, Change(5, "", todo_id=1, todo=todo(1, "new")))  # updated: in its place
    lists.apply(7, Change(6, "", todo_id=4))  # deleted
    assert listed(lists, 7, 5) is None, "only the current revision is kept"
    assert listed(lists, 7, 6) == [{"id": 1, "title": "new"}, {"id": 9, "title": "t"}]
    assert lists.frame(7, 6) == list_frame(f"[{todo(1, 'new')},{todo(9)}]", 6)
    lists.apply(7, Change(6, "", todo_id=9))  # read after this change already: ignored
    lists.apply(7, Change(7, "", replayed=True))  # a repeat: nothing changed
    assert listed(lists, 7, 6) is not None


def test_a_change_not_seen_here_drops_the_list() -> None:
    lists = LiveLists()
    lists.keep(7, 3, f"[{todo(5)}]")
    lists.apply(7, Change(5, "", todo_id=6, todo=todo(6)))  # revision 4 was written elsewhere
    assert listed(lists, 7, 5) is None and listed(lists, 7, 3) is None
    lists.keep(7, 3, f"[{todo(5)}]")
    lists.apply(7, Change(4, "", todo_id=2, todo=todo(2)))  # an id that is not the largest
    assert listed(lists, 7, 4) is None, "not a create of this process: read again"


def test_the_lists_are_bounded_least_recently_used_first_out() -> None:
    one = f"[{todo(1, 'x' * 200)}]"
    lists = LiveLists(max_chars=4 * len(one) + 100)  # three lists and one frame
    for user in range(3):
        lists.keep(user, 1, one)
    assert listed(lists, 0, 1) is not None  # user 0 is now the most recently used
    lists.keep(3, 1, one)
    assert listed(lists, 1, 1) is None, "the least recently used went"
    assert listed(lists, 3, 1) is not None
    lists.keep(9, 1, f"[{todo(1, 'x' * 1000)}]")  # over a quarter of the budget: not kept
    assert listed(lists, 9, 1) is None


def test_a_count_follows_committed_writes_in_revision_order() -> None:
    counts = TodoCounts()
    assert counts.before(7, 1) is None
    counts.note(7, 5, 10)  # 10 todos as of revision 5
    assert counts.before(7, 6) == 10
    counts.moved(7, 6, -1)  # revision 6 deleted one
    assert counts.before(7, 7) == 9
    counts.moved(7, 7, 0)  # revision 7 updated one
    assert counts.before(7, 8) == 9
    assert counts.before(7, 9) is None, "revision 8 was written elsewhere: count again"
    counts.moved(7, 9, -1)  # a write after a gap forgets the note
    assert counts.before(7, 10) is None
