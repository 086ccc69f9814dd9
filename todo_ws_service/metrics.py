"""The todo service's metrics: sockets, messages by action and outcome, fan-out health.

The message path is the hot one: recording a message only adds to per-process tallies,
which `MessageMetrics.flush` moves into the metrics once a second (see its docstring).
With METRICS_ENABLED false the service holds no `MessageMetrics` (None) and the fan-out
metrics are `OFF`. Names and meanings: docs/operations.md#metrics.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import OFF, CounterLike, GaugeLike
from todo_ws_service.messages import REQUEST_MODELS

# Sub-millisecond for a cached list, up to the 10 s handler timeout.
HANDLER_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
# How often each worker moves its message tallies into the metrics (MessageMetrics).
FLUSH_INTERVAL = 1.0
# The `action` label of a message that names no known action (or is not JSON at all).
UNKNOWN_ACTION = "unknown"
ACTIONS = tuple(REQUEST_MODELS)

SOCKETS_OPEN = Gauge(
    "todo_ws_sockets_open",
    "Authenticated WebSockets being served now.",
    multiprocess_mode="livesum",
)
CONNECTIONS = Counter(
    "todo_ws_connections_total",
    "WebSocket handshakes by outcome: accepted, auth_failed (closed 1008), shutting_down "
    "(closed 1001).",
    ["outcome"],
)
MESSAGES = Counter(
    "todo_ws_messages_total",
    "Client messages by action and outcome: ok, or the error code answered.",
    ["action", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "todo_ws_handler_seconds",
    "Time to handle one message (parse, handler, hand-off of the reply), by action.",
    ["action"],
    buckets=HANDLER_BUCKETS,
)
FANOUT_PUBLISHED = Counter(
    "todo_fanout_published_total",
    "Messages published on Redis for the other replicas (events and resync requests).",
)
FANOUT_PUBLISH_FAILURES = Counter(
    "todo_fanout_publish_failures_total",
    "Changes not published on Redis, by reason: redis_error, queue_full, not_subscribed "
    "(each is made good by a resync request once Redis is back).",
    ["reason"],
)
FANOUT_DELIVERIES = Counter(
    "todo_fanout_deliveries_total",
    "Events queued on this process's sockets for a user's other sockets, by source: local "
    "(a change made in this process), redis (another replica's).",
    ["source"],
)
FANOUT_RECEIVED = Counter(
    "todo_fanout_received_total",
    "Messages received from other replicas on Redis.",
)
FANOUT_MALFORMED = Counter(
    "todo_fanout_malformed_total",
    "Messages on the Redis channels that were not ours and were skipped.",
)
REDIS_SUBSCRIBED = Gauge(
    "todo_fanout_redis_subscribed",
    "1 while every worker's Redis listener is subscribed, 0 when one is not (its fan-out is "
    "then local only). Without REDIS_URL it is 0: there is no listener.",
    multiprocess_mode="livemin",
)
REDIS_DISCONNECTS = Counter(
    "todo_fanout_redis_disconnects_total",
    "Times a Redis listener lost its subscription (it reconnects with backoff).",
)


class MessageMetrics:
    """Messages by action and outcome, and handler latency; one per worker process.

    In multiprocess mode every `inc` or `observe` is a lock and a write to a memory-mapped
    file (about 3 us each; a message takes three). So a message only adds to plain
    per-action tallies here (its latency bucket found by bisection), and `flush` moves
    them into the metrics, every `FLUSH_INTERVAL` seconds from `flush_forever` and once
    more when the worker stops. A scrape may lag the last second.
    """

    def __init__(self) -> None:
        self._ok = {action: MESSAGES.labels(action, "ok") for action in ACTIONS}
        self._latency = {action: HANDLER_SECONDS.labels(action) for action in ACTIONS}
        # Per action: [sum of seconds, ok count, count per bucket (+Inf last)].
        self._tally = {action: _empty_tally() for action in ACTIONS}
        self._failed: dict[tuple[str, str], int] = {}

    def handled(self, action: str, seconds: float) -> None:
        """One message of `action` answered normally in `seconds`."""
        tally = self._tally[action]
        tally[0] += seconds
        tally[1] += 1
        tally[2 + bisect_left(HANDLER_BUCKETS, seconds)] += 1

    def failed(self, action: Any, code: str, seconds: float | None = None) -> None:
        """One message answered with the error `code` (`action` as the client sent it;
        anything but a known action, e.g. None for a frame not read, counts as `unknown`)."""
        label = action if isinstance(action, str) and action in self._tally else UNKNOWN_ACTION
        key = (label, code)
        self._failed[key] = self._failed.get(key, 0) + 1
        if seconds is not None and label != UNKNOWN_ACTION:
            tally = self._tally[label]
            tally[0] += seconds
            tally[2 + bisect_left(HANDLER_BUCKETS, seconds)] += 1

    def failed_message(self, message: Any, code: str, started: float) -> None:
        """`failed` for a decoded message whose handling began at `started` (perf_counter)."""
        action = message.get("action") if isinstance(message, dict) else None
        self.failed(action, code, time.perf_counter() - started)

    def flush(self) -> None:
        """Move the tallies into the metrics (what a scrape reads)."""
        for action, tally in self._tally.items():
            if tally[1]:
                self._ok[action].inc(tally[1])
            latency = self._latency[action]
            observed = False
            for index, count in enumerate(tally[2:]):
                if count:
                    # Histogram.observe for `count` observations in this bucket at once
                    # (prometheus-client keeps one value per bucket, summed when read).
                    latency._buckets[index].inc(count)
                    observed = True
            if observed:
                latency._sum.inc(tally[0])
            self._tally[action] = _empty_tally()
        failed, self._failed = self._failed, {}
        for (action, code), count in failed.items():
            MESSAGES.labels(action, code).inc(count)

    async def flush_forever(self, interval: float = FLUSH_INTERVAL) -> None:
        """`flush` every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.flush()


def _empty_tally() -> list[float]:
    return [0.0] * (2 + len(HANDLER_BUCKETS) + 1)


@dataclass(frozen=True, slots=True)
class SocketMetrics:
    """Handshakes and open sockets (app.py), bound to their labels (or `OFF`)."""

    open: GaugeLike = OFF
    accepted: CounterLike = OFF
    auth_failed: CounterLike = OFF
    shutting_down: CounterLike = OFF

    @classmethod
    def build(cls, enabled: bool) -> SocketMetrics:
        if not enabled:
            return cls()
        return cls(
            open=SOCKETS_OPEN,
            accepted=CONNECTIONS.labels("accepted"),
            auth_failed=CONNECTIONS.labels("auth_failed"),
            shutting_down=CONNECTIONS.labels("shutting_down"),
        )


@dataclass(frozen=True, slots=True)
class FanoutMetrics:
    """The hub's counters (fanout.py, redis_hub.py), bound to their labels (or `OFF`)."""

    delivered_local: CounterLike = OFF
    delivered_remote: CounterLike = OFF
    published: CounterLike = OFF
    publish_redis_error: CounterLike = OFF
    publish_queue_full: CounterLike = OFF
    publish_not_subscribed: CounterLike = OFF
    received: CounterLike = OFF
    malformed: CounterLike = OFF
    subscribed: GaugeLike = OFF
    disconnects: CounterLike = OFF

    @classmethod
    def build(cls, enabled: bool) -> FanoutMetrics:
        if not enabled:
            return cls()
        return cls(
            delivered_local=FANOUT_DELIVERIES.labels("local"),
            delivered_remote=FANOUT_DELIVERIES.labels("redis"),
            published=FANOUT_PUBLISHED,
            publish_redis_error=FANOUT_PUBLISH_FAILURES.labels("redis_error"),
            publish_queue_full=FANOUT_PUBLISH_FAILURES.labels("queue_full"),
            publish_not_subscribed=FANOUT_PUBLISH_FAILURES.labels("not_subscribed"),
            received=FANOUT_RECEIVED,
            malformed=FANOUT_MALFORMED,
            subscribed=REDIS_SUBSCRIBED,
            disconnects=REDIS_DISCONNECTS,
        )
