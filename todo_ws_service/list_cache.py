"""Large encoded `todos_list` frames, kept while their user's revision holds.

Reading and encoding a user's whole list is the most expensive thing a client can ask
for: 5,000 todos take ~13 ms of event-loop time (SQL ~7 ms, row dicts ~5 ms, JSON ~1.5
ms), ~40 ms with long descriptions (issue 12 finding 3). A user's revision moves on every
change to their todos, on any replica, so a list read at the same revision is the same
list: when the revision matches, the encoded frame is reused and only the revision is read.

Only lists of at least `MIN_CHARS` are kept (small ones are cheap to rebuild), least
recently used first out once the frames kept add up to more than `max_chars`.
"""

from __future__ import annotations

from collections import OrderedDict

MIN_CHARS = 16_384
MAX_CHARS = 32 * 1024 * 1024


class ListCache:
    """owner_id -> (revision, encoded `todos_list`), bounded by total size."""

    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        self._frames: OrderedDict[int, tuple[int, str]] = OrderedDict()
        self._chars = 0
        self._max_chars = max_chars

    def get(self, owner_id: int, rev: int) -> str | None:
        """The user's list at revision `rev`, if it is kept."""
        entry = self._frames.get(owner_id)
        if entry is None or entry[0] != rev:
            return None
        self._frames.move_to_end(owner_id)
        return entry[1]

    def put(self, owner_id: int, rev: int, frame: str) -> None:
        """Keep `frame` as the user's list at `rev` if it is worth keeping."""
        old = self._frames.pop(owner_id, None)
        if old is not None:
            self._chars -= len(old[1])
        if not MIN_CHARS <= len(frame) <= self._max_chars // 2:
            return  # small: cheap to rebuild; huge: it would crowd out every other list
        self._frames[owner_id] = (rev, frame)
        self._chars += len(frame)
        while self._chars > self._max_chars:
            _, (_, dropped) = self._frames.popitem(last=False)
            self._chars -= len(dropped)
