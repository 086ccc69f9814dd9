"""The two per-revision notes of the store: encoded lists (`list_cache.py`) and todo counts
(`todo_counts.py`). Both are right only at the revision they were taken at."""

from __future__ import annotations

from todo_ws_service.list_cache import MIN_CHARS, ListCache
from todo_ws_service.todo_counts import TodoCounts


def test_a_list_is_reused_only_at_its_revision() -> None:
    cache = ListCache(max_chars=10 * MIN_CHARS)
    big = "x" * MIN_CHARS
    cache.put(7, 3, big)
    assert cache.get(7, 3) is big
    assert cache.get(7, 4) is None and cache.get(8, 3) is None
    cache.put(7, 4, "small")  # a list that shrank replaces (drops) the old one
    assert cache.get(7, 3) is None and cache.get(7, 4) is None


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    cache = ListCache(max_chars=3 * MIN_CHARS)
    for user in range(3):
        cache.put(user, 1, "x" * MIN_CHARS)
    assert cache.get(0, 1) is not None  # user 0 is now the most recently used
    cache.put(3, 1, "x" * MIN_CHARS)
    assert cache.get(1, 1) is None, "the least recently used went"
    assert all(cache.get(user, 1) is not None for user in (0, 2, 3))
    cache.put(9, 1, "x" * (2 * MIN_CHARS))  # over half the budget: not kept
    assert cache.get(9, 1) is None


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
