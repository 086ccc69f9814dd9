"""Gap-free, ordered delivery to one socket (CONTRACT.md section 6).

Each socket has a `RevisionGate`: the one place its user's changes are put in order. It
knows the revision the socket holds (`rev`: its first list or delta, then every change
sent). A change at `rev + 1` goes out at once; a later one is held, waiting for the
missing revisions (events that crossed replicas out of order, or the asker's reply racing
another socket's event). If they have not come within `GAP_WAIT`, the socket is sent a
`todos_delta` read from the database from `rev`, then whatever held changes come after it.
Changes at or below `rev` are already covered and dropped, except the asker's own reply,
which is always sent (its `request_id` settles the client's request).

The gate never waits itself: `emit` puts a frame on the socket's outbox, and the delta is
read by a task of its own while newer changes stay held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("todo_ws_service.gapfill")

# How long a change waits for the revisions before it before a delta is read instead.
GAP_WAIT = 0.25
# More changes held than this: read the delta at once rather than wait.
HELD_LIMIT = 1000

# Reads the sync message (delta, or full list) after a revision: (its revision, frame).
Fill = Callable[[int], Awaitable[tuple[int, str]]]


class Held:
    """A frame waiting for its turn; a reply's `released` future lets its asker wait."""

    __slots__ = ("frame", "released")

    def __init__(self, frame: str, released: asyncio.Future[None] | None) -> None:
        self.frame = frame
        self.released = released


class RevisionGate:
    """Releases one socket's changes in revision order, none skipped."""

    def __init__(
        self, emit: Callable[[str], None], fill: Fill, on_fill_failed: Callable[[], None]
    ) -> None:
        self._emit = emit
        self._fill = fill
        self._on_fill_failed = on_fill_failed
        self.rev: int | None = None  # None until the socket's first list or delta
        self._held: dict[int, list[Held]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._filling: asyncio.Task[None] | None = None
        self._fill_since = 0
        # A snapshot older than the running fill's start went out meanwhile: fill again.
        self._refill_from: int | None = None
        # A resync was asked for while a fill was running (it may have read too early).
        self._fill_again = False

    # ------------------------------------------------------------ input

    def start(self, rev: int, frame: str) -> None:
        """The socket's first message (a list or delta at `rev`)."""
        self._emit(frame)
        self._advance_to(rev)

    def snapshot(self, rev: int, frame: str) -> None:
        """A list or delta answering this socket: its state is now `rev`."""
        self._emit(frame)
        if self._filling is not None:
            if rev < self._fill_since:
                self._refill_from = min(rev, self._refill_from or rev)
            return
        if self.rev is not None and rev < self.rev:
            # Read before changes this socket was already sent: bring it forward again.
            self.rev = rev
            self.fill_now()
        else:
            self._advance_to(rev)

    def offer(self, rev: int, frame: str) -> None:
        """A change from another socket or replica."""
        if self.rev is not None and rev <= self.rev:
            return  # covered already
        if self.rev is not None and rev == self.rev + 1 and self._filling is None:
            self._emit(frame)
            self._advance_to(rev)
            return
        self._hold(rev, Held(frame, None))

    def offer_reply(self, rev: int, frame: str) -> asyncio.Future[None] | None:
        """The asker's own change; a future to wait on when it has to wait its turn."""
        if self._filling is None and self.rev is not None and rev <= self.rev + 1:
            self._emit(frame)
            if rev == self.rev + 1:
                self._advance_to(rev)
            return None
        released = asyncio.get_running_loop().create_future()
        self._hold(rev, Held(frame, released))
        return released

    def fill_now(self) -> None:
        """Send the socket a delta from its revision now (after a fan-out outage)."""
        if self._filling is not None:
            self._fill_again = True
        elif self.rev is not None:
            self._cancel_timer()
            self._fill_since = self.rev
            self._filling = asyncio.create_task(self._run_fill(self.rev))

    def close(self) -> None:
        """Stop: nothing more is sent; an asker waiting for its turn is let go."""
        self._cancel_timer()
        if self._filling is not None:
            self._filling.cancel()
        for waiting in self._held.values():
            for held in waiting:
                if held.released is not None and not held.released.done():
                    held.released.set_result(None)
        self._held.clear()

    # ------------------------------------------------------------ ordering

    def _hold(self, rev: int, held: Held) -> None:
        self._held.setdefault(rev, []).append(held)
        if len(self._held) > HELD_LIMIT:
            self.fill_now()
        elif self._timer is None and self._filling is None and self.rev is not None:
            self._timer = asyncio.get_running_loop().call_later(GAP_WAIT, self.fill_now)

    def _advance_to(self, rev: int) -> None:
        """The socket now holds `rev`: settle what is covered, send what follows in turn."""
        self.rev = rev
        for covered in [r for r in self._held if r <= rev]:
            for held in self._held.pop(covered):
                if held.released is not None:
                    self._release(held)  # a reply is always sent, even if covered
        while self.rev + 1 in self._held:
            self.rev += 1
            for held in self._held.pop(self.rev):
                self._release(held)
        if not self._held:
            self._cancel_timer()
        elif self._timer is None and self._filling is None:
            self._timer = asyncio.get_running_loop().call_later(GAP_WAIT, self.fill_now)

    def _release(self, held: Held) -> None:
        self._emit(held.frame)
        if held.released is not None and not held.released.done():
            held.released.set_result(None)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _run_fill(self, since: int) -> None:
        try:
            rev, frame = await self._fill(since)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not read a delta to fill a gap")
            self._filling = None
            self.close()
            self._on_fill_failed()
            return
        self._filling = None
        self._emit(frame)
        self._advance_to(max(rev, since))
        if self._refill_from is not None:
            self.rev, self._refill_from = self._refill_from, None
            self._fill_again = True
        if self._fill_again:
            self._fill_again = False
            self.fill_now()
