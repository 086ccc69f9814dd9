"""Fan-out: carrying each change to every open socket of its user, and to nobody else.

    Hub                  registry of this process's sockets, by user; the delivery rule
     ├── LocalHub        one process: deliver straight to the local sockets
     └── RedisHub        (redis_hub.py) several replicas: deliver locally, publish once
                         on a per-user channel; every other replica delivers what it
                         receives to its own sockets with `deliver_local`

The rule lives in `Hub.publish`: the asking socket gets its own copy (the one carrying its
`request_id`); every other socket of the user gets the shared copy, encoded once by the
caller. Every copy carries the change's revision, and each socket's `RevisionGate`
(gapfill.py) puts what it is given in revision order with none skipped: the hub only ever
hands changes to sockets, it never sends. Sockets are `Subscriber`s; delivery never waits
on a slow socket (`Subscriber.deliver` only queues).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Protocol

from todo_ws_service.metrics import FanoutMetrics


class Subscriber(Protocol):
    """What the hub needs of a socket (implemented by `connection.Connection`)."""

    @property
    def user_id(self) -> int: ...

    def deliver(self, rev: int, frame: str) -> None:
        """Queue another socket's change (revision `rev`); never blocks."""

    def deliver_reply(self, rev: int, frame: str) -> asyncio.Future[None] | None:
        """Queue this socket's own change; a future when it must wait for earlier ones."""

    def resync(self) -> None:
        """Changes may have been lost (a fan-out outage): send a delta from its revision."""


class Hub(ABC):
    """The sockets of this process by user, and the one delivery rule."""

    def __init__(self, max_per_user: int = 0, metrics: FanoutMetrics | None = None) -> None:
        self._by_user: dict[int, set[Subscriber]] = {}
        self.metrics = metrics or FanoutMetrics()
        # `WS_MAX_CONNECTIONS_PER_USER`: each socket multiplies every change of its user
        # into one more frame (200 sockets turned 60 messages into 12,000 frames). 0: off.
        self.max_per_user = max_per_user

    def register(self, subscriber: Subscriber) -> bool:
        """Add a socket; False (and not added) when its user already has `max_per_user`."""
        sockets = self._by_user.setdefault(subscriber.user_id, set())
        if self.max_per_user and len(sockets) >= self.max_per_user:
            return False
        sockets.add(subscriber)
        return True

    def unregister(self, subscriber: Subscriber) -> None:
        sockets = self._by_user.get(subscriber.user_id)
        if sockets is not None:
            sockets.discard(subscriber)
            if not sockets:
                del self._by_user[subscriber.user_id]

    def subscribers(self) -> Iterator[Subscriber]:
        """Every local socket (for shutdown, and for a resync after a lost broker)."""
        for sockets in list(self._by_user.values()):
            yield from list(sockets)

    def publish(
        self, user_id: int, rev: int, event: str, origin: Subscriber, origin_reply: str
    ) -> asyncio.Future[None] | None:
        """Give `origin_reply` to the asking socket and `event` to the user's other sockets.

        Returns what the asker must wait on before its next reply (None: nothing).
        """
        waiting = origin.deliver_reply(rev, origin_reply)
        self._broadcast(user_id, rev, event, origin)
        return waiting

    def deliver_local(
        self, user_id: int, rev: int, event: str, skip: Subscriber | None = None
    ) -> int:
        """Queue `event` on each local socket of `user_id` except `skip`; how many."""
        delivered = 0
        for subscriber in self._by_user.get(user_id, ()):
            if subscriber is not skip:
                subscriber.deliver(rev, event)
                delivered += 1
        return delivered

    @abstractmethod
    def _broadcast(self, user_id: int, rev: int, event: str, origin: Subscriber) -> None:
        """Get `event` to every socket of the user other than `origin`, wherever it is."""

    @abstractmethod
    async def start(self) -> None:
        """Open the connections the hub needs."""

    @abstractmethod
    async def close(self) -> None:
        """Release what `start` opened."""

    async def check(self) -> str:
        """Readiness: "ok", "degraded" (local delivery only), or raise when unusable."""
        return "ok"


class LocalHub(Hub):
    """Fan-out inside one process: enough for a single replica."""

    def _broadcast(self, user_id: int, rev: int, event: str, origin: Subscriber) -> None:
        delivered = self.deliver_local(user_id, rev, event, skip=origin)
        if delivered:
            self.metrics.delivered_local.inc(delivered)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
