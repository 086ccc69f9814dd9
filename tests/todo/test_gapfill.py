"""The revision gate on its own (gapfill.py): the ordering rules of contract section 6 for
one socket, driven directly. Its `fill` here answers like the store would, from a list of
the user's changes, so every rule can be hit on purpose (in the running service the gaps
come from replicas and races, which tests/scale and tests/todo/test_gap_free.py cover)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from todo_ws_service import gapfill
from todo_ws_service.gapfill import RevisionGate


class Socket:
    """What the gate emits, and a `fill` reading "the database" (the changes committed)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.committed = 0  # the user's revision in "the database"
        self.fills: list[int] = []
        self.fail_fill = False
        self.failed = False

    def emit(self, frame: str) -> None:
        self.sent.append(orjson.loads(frame))

    async def fill(self, since: int) -> tuple[int, str]:
        self.fills.append(since)
        await asyncio.sleep(0)
        if self.fail_fill:
            raise RuntimeError("database down")
        delta = {"type": "todos_delta", "since": since, "rev": self.committed}
        return self.committed, orjson.dumps(delta).decode()

    def on_fill_failed(self) -> None:
        self.failed = True

    def revs(self) -> list[object]:
        return [m.get("rev") for m in self.sent]


def event(rev: int, **extra: object) -> str:
    return orjson.dumps({"type": "todo_created", "rev": rev, **extra}).decode()


@pytest.fixture
def fast_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gapfill, "GAP_WAIT", 0.05)


def started(socket: Socket, rev: int = 0) -> RevisionGate:
    gate = RevisionGate(socket.emit, socket.fill, socket.on_fill_failed)
    socket.committed = rev
    gate.start(rev, orjson.dumps({"type": "todos_list", "rev": rev}).decode())
    return gate


async def test_out_of_order_changes_go_out_in_order(fast_gap: None) -> None:
    socket = Socket()
    gate = started(socket)
    for rev in (3, 1, 2, 5, 4):
        gate.offer(rev, event(rev))
    assert socket.revs() == [0, 1, 2, 3, 4, 5]
    gate.offer(4, event(4))  # a duplicate, covered already
    assert socket.revs() == [0, 1, 2, 3, 4, 5]
    await asyncio.sleep(0.1)
    assert socket.fills == [], "no gap, no delta"


async def test_a_gap_that_does_not_close_is_filled_by_a_delta_first(fast_gap: None) -> None:
    socket = Socket()
    gate = started(socket)
    gate.offer(1, event(1))
    socket.committed = 4  # 2 and 3 were committed, but their events are lost
    gate.offer(4, event(4))
    gate.offer(5, event(5))  # committed after the delta is read: must follow it
    assert socket.revs() == [0, 1]
    await asyncio.sleep(0.15)
    assert socket.fills == [1]
    assert socket.sent[2] == {"type": "todos_delta", "since": 1, "rev": 4}
    assert socket.revs() == [0, 1, 4, 5], "the covered event 4 is dropped, 5 follows"


async def test_the_askers_reply_waits_its_turn_and_is_sent_even_when_covered(
    fast_gap: None,
) -> None:
    socket = Socket()
    gate = started(socket)
    waiting = gate.offer_reply(2, event(2, request_id="mine"))
    assert waiting is not None and socket.revs() == [0], "rev 1 has not been sent yet"
    socket.committed = 2
    await asyncio.wait_for(waiting, 1)
    # Rev 1 never came as an event: a delta covered it, then the reply went out anyway.
    assert socket.sent[1]["type"] == "todos_delta"
    assert socket.sent[2] == {"type": "todo_created", "rev": 2, "request_id": "mine"}
    assert gate.offer_reply(2, event(2, request_id="again")) is None, "covered: sent at once"
    assert socket.sent[-1]["request_id"] == "again"


async def test_a_snapshot_older_than_what_was_sent_is_brought_forward(fast_gap: None) -> None:
    socket = Socket()
    gate = started(socket)
    gate.offer(1, event(1))
    gate.offer(2, event(2))
    socket.committed = 2
    gate.snapshot(1, orjson.dumps({"type": "todos_list", "rev": 1}).decode())
    await asyncio.sleep(0.01)
    assert socket.fills == [1]
    assert socket.sent[-1] == {"type": "todos_delta", "since": 1, "rev": 2}


async def test_a_fill_that_fails_lets_the_asker_go_and_closes_the_socket(
    fast_gap: None,
) -> None:
    socket = Socket()
    gate = started(socket)
    socket.fail_fill = True
    waiting = gate.offer_reply(3, event(3, request_id="r"))
    assert waiting is not None
    await asyncio.wait_for(waiting, 1)
    assert socket.failed, "the socket is closed so the client resumes with since"
    assert socket.revs() == [0], "nothing out of order was sent"


async def test_a_resync_during_a_fill_fills_again(fast_gap: None) -> None:
    socket = Socket()
    gate = started(socket)
    gate.fill_now()
    gate.fill_now()  # a second outage notice while the first delta is being read
    await asyncio.sleep(0.05)
    assert socket.fills == [0, 0]
