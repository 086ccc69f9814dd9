"""Fan-out across replicas through Redis pub/sub.

Every change is delivered to this replica's own sockets at once, then published once on
the user's channel (`{prefix}:user:{id}`); every other replica delivers what it receives
to its own sockets of that user. A replica ignores its own messages, so no socket ever
gets a change twice. Publishing goes through one queue and one task: the socket that made
the change never waits on Redis, and a replica's changes leave in the order they were
committed.

Messages arrive in publish order per replica, but two replicas' changes for one user may
interleave in any order: each socket's revision gate (gapfill.py) restores the order, and
fills a gap that does not close (a lost message) with a delta from the database.

When Redis is lost, local sockets keep working and `/readyz` says "degraded". A background
task reconnects with backoff; once back, each local socket is sent a delta from its
revision (it may have missed other replicas' changes), and the other replicas are asked to
do the same for every user who changed something here meanwhile (`resync` messages). A
publish that fails while the subscription stays up is followed by such a request as soon
as a publish succeeds again. A malformed message on the channels (anything another client
of the Redis may publish there, even bytes that are not UTF-8) is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from todo_ws_service.fanout import Hub, Subscriber
from todo_ws_service.metrics import FanoutMetrics

logger = logging.getLogger("todo_ws_service.redis_hub")

# Messages on a channel: "<replica id>|E|<rev>|<event JSON>" or "<replica id>|R|" (resync).
EVENT, RESYNC = "E", "R"
# Every event the store encodes starts so (orjson, `type` first): a cheap check that what
# goes on to clients is one of our events, without parsing it on every replica.
_EVENT_START = '{"type":"todo_'
PUBLISH_QUEUE_LIMIT = 10_000
RECONNECT_MIN, RECONNECT_MAX = 0.2, 5.0
REDIS_TIMEOUT = 2.0


class RedisHub(Hub):
    """Local delivery plus one publish per change; see the module docstring."""

    def __init__(
        self,
        redis_url: str,
        channel_prefix: str,
        max_per_user: int = 0,
        metrics: FanoutMetrics | None = None,
    ) -> None:
        super().__init__(max_per_user, metrics)
        self._redis_url = redis_url
        self._prefix = channel_prefix
        self._replica = uuid.uuid4().hex
        self._outgoing: asyncio.Queue[tuple[int, str]] = asyncio.Queue(PUBLISH_QUEUE_LIMIT)
        # Users who changed something while Redis was unreachable: resync them when back.
        self._missed: set[int] = set()
        self._subscribed = asyncio.Event()
        self._has_connected = False
        self._redis: Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def channel(self, user_id: int) -> str:
        return f"{self._prefix}:user:{user_id}"

    # ------------------------------------------------------------ Hub

    def _broadcast(self, user_id: int, rev: int, event: str, origin: Subscriber) -> None:
        delivered = self.deliver_local(user_id, rev, event, skip=origin)
        if delivered:
            self.metrics.delivered_local.inc(delivered)
        if not self._subscribed.is_set():
            self.metrics.publish_not_subscribed.inc()
            self._missed.add(user_id)
            return
        try:
            self._outgoing.put_nowait((user_id, f"{self._replica}|{EVENT}|{rev}|{event}"))
        except asyncio.QueueFull:
            self.metrics.publish_queue_full.inc()
            self._missed.add(user_id)

    async def start(self) -> None:
        self._redis = Redis.from_url(
            self._redis_url,
            decode_responses=True,
            # Bytes that are not UTF-8 would raise inside the listener: make them garbage
            # that `_on_message` refuses instead.
            encoding_errors="replace",
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            health_check_interval=5,
        )
        self.metrics.subscribed.set(0)
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="redis-listen"),
            asyncio.create_task(self._publish_forever(), name="redis-publish"),
        ]
        # Start serving subscribed when Redis answers; without it, start degraded.
        try:
            await asyncio.wait_for(self._subscribed.wait(), REDIS_TIMEOUT)
        except TimeoutError:
            logger.warning("Redis unreachable at start-up: fan-out is local only for now")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def check(self) -> str:
        stopped = [task.get_name() for task in self._tasks if task.done()]
        if stopped:
            raise RuntimeError(f"fan-out task stopped: {', '.join(stopped)}")
        return "ok" if self._subscribed.is_set() else "degraded"

    # ------------------------------------------------------------ receiving

    async def _listen_forever(self) -> None:
        assert self._redis is not None
        delay = RECONNECT_MIN
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(self.channel("*"))  # type: ignore[arg-type]
                await self._on_connected()
                delay = RECONNECT_MIN
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                if self._subscribed.is_set():
                    logger.warning("lost Redis, fan-out is local only: %s", type(exc).__name__)
                    self.metrics.disconnects.inc()
                self._subscribed.clear()
                self.metrics.subscribed.set(0)
            finally:
                await _quietly_close(pubsub)
            await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 (jitter, not crypto)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _on_connected(self) -> None:
        if self._has_connected:
            logger.info("Redis is back: resyncing local sockets")
        self._has_connected = True
        self._subscribed.set()
        self.metrics.subscribed.set(1)
        missed, self._missed = self._missed, set()
        self._ask_resync(missed)
        for subscriber in self.subscribers():
            subscriber.resync()

    def _ask_resync(self, users: set[int]) -> None:
        for user_id in users:
            try:
                self._outgoing.put_nowait((user_id, f"{self._replica}|{RESYNC}|"))
            except asyncio.QueueFull:
                self._missed.add(user_id)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message["type"] != "pmessage":
                continue
            try:
                self._on_message(message["channel"], message["data"])
            except Exception as exc:  # one bad message must not stop the fan-out
                self.metrics.malformed.inc()
                logger.warning("skipped a malformed fan-out message (%s)", type(exc).__name__)

    def _on_message(self, channel: str, data: str) -> None:
        replica, kind, body = data.split("|", 2)
        if replica == self._replica:
            return
        user_id = int(channel.rsplit(":", 1)[1])
        if kind == EVENT:
            text, event = body.split("|", 1)
            rev = int(text)
            if rev < 1 or not (event.startswith(_EVENT_START) and event.endswith("}")):
                raise ValueError("not an event")
            self.metrics.received.inc()
            delivered = self.deliver_local(user_id, rev, event)
            if delivered:
                self.metrics.delivered_remote.inc(delivered)
        elif kind == RESYNC:
            self.metrics.received.inc()
            for subscriber in list(self._by_user.get(user_id, ())):
                subscriber.resync()
        else:
            raise ValueError(f"unknown kind {kind!r}")

    # ------------------------------------------------------------ sending

    async def _publish_forever(self) -> None:
        assert self._redis is not None
        while True:
            if self._missed and self._subscribed.is_set():
                # Publishes failed while subscribed: ask the other replicas to resync.
                missed, self._missed = self._missed, set()
                self._ask_resync(missed)
            try:
                # While some users wait for a resync, wake up to retry it.
                wait = RECONNECT_MAX if self._missed else None
                user_id, payload = await asyncio.wait_for(self._outgoing.get(), wait)
            except TimeoutError:
                continue
            try:
                await self._redis.publish(self.channel(user_id), payload)
            except (RedisError, OSError):
                self.metrics.publish_redis_error.inc()
                self._missed.add(user_id)
            else:
                self.metrics.published.inc()


async def _quietly_close(pubsub: PubSub) -> None:
    try:
        await pubsub.aclose()
    except (RedisError, OSError):
        pass
