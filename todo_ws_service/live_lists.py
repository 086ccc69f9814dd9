"""Users' lists kept up to date in memory: each todo's JSON, changed by each committed write.

A `todos_list` is what a socket gets at connect, after a gap it can't fill, and for every
`get_all_todos`. Reading it from the database costs a statement over all of the user's
rows (~35 us for 6 todos on SQLite, ~13 ms for 5,000); keeping it costs a dictionary of
JSON texts per user. An entry holds the user's todos at one revision, in id order:

- it is made from a list read from the database (`keep`), at the revision of that read;
- each change committed on this process moves it on by one revision (`apply`): a create or
  update puts the todo's JSON, a delete takes it out. A change that is not the next
  revision (another replica wrote in between, or changes arrived out of order) drops the
  entry instead: it is read again next time;
- it is used only when its revision is the user's current one (`frame`), read in the same
  snapshot as a database read would be. A user's revision moves on every change, on every
  replica, so an entry used is never stale.

Ids only grow, so a create always belongs at the end and a dict keeps id order by itself.
The last frame built is kept with the entry, so a large list asked for again at the same
revision is not joined again. Bounded by the characters held (todos and frames), least
recently used out first; a user whose list alone would take more than half is not kept.
"""

from __future__ import annotations

from collections import OrderedDict

import orjson

from todo_ws_service.store_types import Change

MAX_CHARS = 16 * 1024 * 1024


class _Entry:
    __slots__ = ("chars", "frame", "rev", "todos")

    def __init__(self, rev: int, todos: dict[int, str]) -> None:
        self.rev = rev
        self.todos = todos
        self.chars = sum(map(len, todos.values()))
        self.frame: str | None = None  # the list as last sent, at `rev`


def list_frame(todos_json: str, rev: int) -> str:
    """The `todos_list` message around a JSON array of todos (the same text as encoding
    {"type", "data", "rev"}, without decoding the todos)."""
    return f'{{"type":"todos_list","data":{todos_json},"rev":{rev}}}'


class LiveLists:
    """owner_id -> the user's todos at one revision, bounded by total size."""

    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._chars = 0
        self._max_chars = max_chars

    def frame(self, owner_id: int, rev: int) -> str | None:
        """The user's `todos_list` at revision `rev`, if it is kept at that revision."""
        entry = self._entries.get(owner_id)
        if entry is None or entry.rev != rev:
            return None
        self._entries.move_to_end(owner_id)
        if entry.frame is None:
            frame = entry.frame = list_frame(f"[{','.join(entry.todos.values())}]", rev)
            self._resize(entry, len(frame))
            self._evict()
            return frame
        return entry.frame

    def keep(self, owner_id: int, rev: int, todos_json: str) -> None:
        """Start keeping the user's list as read at `rev` (a JSON array in id order)."""
        self._drop(owner_id)
        if len(todos_json) > self._max_chars // 4:  # its todos and its frame: half
            return
        todos = {todo["id"]: orjson.dumps(todo).decode() for todo in orjson.loads(todos_json)}
        entry = self._entries[owner_id] = _Entry(rev, todos)
        self._chars += entry.chars
        self._evict()

    def apply(self, owner_id: int, change: Change) -> None:
        """Move the user's entry on by a change just committed here."""
        entry = self._entries.get(owner_id)
        if entry is None or change.replayed or entry.rev >= change.rev:
            return  # nothing kept, nothing changed, or read after this change already
        todos = entry.todos
        todo_id = change.todo_id
        if entry.rev + 1 != change.rev or (
            change.todo is not None
            and todo_id not in todos
            and todos
            and todo_id < next(reversed(todos))
        ):
            self._drop(owner_id)  # a change in between was not seen here
            return
        old = todos.pop(todo_id, "") if change.todo is None else todos.get(todo_id, "")
        if change.todo is not None:
            todos[todo_id] = change.todo
        entry.rev = change.rev
        self._resize(entry, len(change.todo or "") - len(old) - len(entry.frame or ""))
        entry.frame = None
        self._evict()

    def _resize(self, entry: _Entry, delta: int) -> None:
        entry.chars += delta
        self._chars += delta

    def _drop(self, owner_id: int) -> None:
        entry = self._entries.pop(owner_id, None)
        if entry is not None:
            self._chars -= entry.chars

    def _evict(self) -> None:
        while self._chars > self._max_chars and self._entries:
            _, entry = self._entries.popitem(last=False)
            self._chars -= entry.chars
