"""The auth service's limits shared through Redis (`REDIS_URL`), with the `limits` library.

Each limit is a moving window of `limits` (`MovingWindowRateLimiter` on its async Redis
storage, through redis-py): the same sliding window as `throttle.SlidingWindowCounter`,
one list of stamps per key, checked and added atomically in Redis. Every worker and
replica pointed at one Redis (with one `REDIS_KEY_PREFIX`) shares the counts, so a
failure on replica A counts on replica B.

What counts is what `MemoryLimits` counts. An attempt is counted while it runs by the
process running it (its "in flight" count, added to what Redis holds) and written to
Redis once it has failed (`limits` has no way to take one stamp back, and a login that
succeeds, or is refused as `busy`, must not stay counted). So attempts running at the
same moment on different replicas can each pass the last free place of a window, which
bounds the excess by the replicas' concurrent attempts; one process never exceeds a limit.

Redis unreachable (or slower than `REDIS_TIMEOUT`): the service keeps answering and each
process falls back to its own counts (the behaviour without `REDIS_URL`), which it keeps
all along for that purpose; a warning is logged when that starts and when Redis is back.
Logins never fail because Redis is down: the limits are a brake on guessing, not the
authentication itself.

Keys are `{REDIS_KEY_PREFIX}:{limit}/{key}/{amount}/{window}/second`; the username part
is a SHA-256 of the lowercased name (people type passwords into that field).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from auth_service.throttle import Attempt, CountedAttempt, LoginAttempt, MemoryLimits, Outcome
from shared.settings import AuthSettings

logger = logging.getLogger("auth_service.throttle")


def limits_storage_uri(redis_url: str) -> str:
    """`REDIS_URL` in the scheme `limits` reads for its async Redis storage."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


@dataclass
class SharedWindow:
    """One limit in Redis, plus this process's attempts of it still running."""

    limiter: MovingWindowRateLimiter
    item: RateLimitItem | None  # None: the limit is off (0)

    def __post_init__(self) -> None:
        self.in_flight: Counter[str] = Counter()

    async def counted(self, key: str) -> tuple[int, float]:
        """How many attempts Redis holds for `key` in the window, and when the oldest
        of them leaves it (epoch seconds)."""
        if self.item is None:
            return 0, 0.0
        stats = await self.limiter.get_window_stats(self.item, key)
        return self.item.amount - stats.remaining, stats.reset_time

    def retry_after(self, key: str, counted: int, leaves_at: float) -> int:
        """Seconds to wait (0: go ahead), from `counted` plus the attempts in flight."""
        if self.item is None:
            return 0
        if counted >= self.item.amount:
            return max(1, math.ceil(leaves_at - time.time()))
        if counted + self.in_flight[key] >= self.item.amount:
            return 1  # the attempts in flight settle within a hash's time
        return 0

    async def record(self, key: str) -> None:
        if self.item is not None:
            await self.limiter.hit(self.item, key)

    async def clear(self, key: str) -> None:
        if self.item is not None:
            await self.limiter.clear(self.item, key)


class RedisLimits:
    """`AttemptLimits` in Redis, shared by every process using the same Redis and prefix."""

    def __init__(self, settings: AuthSettings) -> None:
        assert settings.redis_url
        self.local = MemoryLimits(settings)  # the fallback while Redis is unreachable
        self._pool = ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
        )
        storage = RedisStorage(
            limits_storage_uri(settings.redis_url),
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=settings.redis_key_prefix,
            # A documented option, passed to redis-py as is (the annotation is narrower);
            # our own pool, so that `close` can close it.
            connection_pool=self._pool,  # type: ignore[arg-type]
        )
        limiter = MovingWindowRateLimiter(storage)

        def window(name: str, amount: int, seconds: int) -> SharedWindow:
            item = RateLimitItemPerSecond(amount, seconds, namespace=name) if amount else None
            return SharedWindow(limiter, item)

        self.pairs = window(
            "login-pair", settings.login_max_failures, settings.login_failure_window
        )
        self.addresses = window(
            "login-address", settings.login_max_per_address, settings.login_failure_window
        )
        self.registrations = window(
            "register", settings.register_max_per_address, settings.register_window
        )
        self.degraded = False

    @staticmethod
    def pair_key(username: str, address: str) -> str:
        digest = hashlib.sha256(username.lower().encode()).hexdigest()[:32]
        return f"{digest}@{address}"

    def _unreachable(self, exc: BaseException) -> None:
        if not self.degraded:
            self.degraded = True
            logger.warning(
                "throttle store unreachable; counting in this process only",
                extra={"error": type(exc).__name__},
            )

    def _reachable(self) -> None:
        if self.degraded:
            self.degraded = False
            logger.warning("throttle store reachable again; limits shared again")

    async def start_login(self, username: str, address: str) -> Attempt:
        pair = self.pair_key(username, address)
        try:
            (pair_count, pair_leaves), (addr_count, addr_leaves) = await asyncio.gather(
                self.pairs.counted(pair), self.addresses.counted(address)
            )
        except StorageError as exc:
            self._unreachable(exc)
            return self.local.login_now(username, address)
        self._reachable()
        # From here to the count, no `await`: this process's checks and counts interleave
        # with nothing.
        retry_after = max(
            self.pairs.retry_after(pair, pair_count, pair_leaves),
            self.addresses.retry_after(address, addr_count, addr_leaves),
        )
        if retry_after:
            return Attempt(retry_after)
        local = LoginAttempt(self.local.logins, username, address)
        windows = [(self.pairs, pair), (self.addresses, address)]
        return _SharedAttempt(self, local, windows, login=True)

    async def start_registration(self, address: str) -> Attempt:
        try:
            count, leaves = await self.registrations.counted(address)
        except StorageError as exc:
            self._unreachable(exc)
            return self.local.registration_now(address)
        self._reachable()
        retry_after = self.registrations.retry_after(address, count, leaves)
        if retry_after:
            return Attempt(retry_after)
        local = CountedAttempt(self.local.registrations, address)
        return _SharedAttempt(self, local, [(self.registrations, address)], login=False)

    async def settle(
        self, outcome: Outcome, windows: list[tuple[SharedWindow, str]], login: bool
    ) -> None:
        """Write a settled attempt to Redis: a failure (or any registration that got to
        hashing) is recorded; a successful login clears its pair's failures."""
        try:
            if outcome == "failure":
                await asyncio.gather(*(window.record(key) for window, key in windows))
            elif outcome == "success" and login:
                window, key = windows[0]
                await window.clear(key)
        except StorageError as exc:
            self._unreachable(exc)

    async def close(self) -> None:
        await self._pool.aclose()


class _SharedAttempt(Attempt):
    """An attempt counted in flight here and, once settled, written to Redis."""

    def __init__(
        self,
        limits: RedisLimits,
        local: Attempt,
        windows: list[tuple[SharedWindow, str]],
        login: bool,
    ) -> None:
        super().__init__()
        self._limits, self._local, self._windows, self._login = limits, local, windows, login
        for window, key in windows:
            window.in_flight[key] += 1

    def _apply(self, outcome: Outcome) -> None:
        for window, key in self._windows:
            window.in_flight[key] -= 1
            if window.in_flight[key] <= 0:
                del window.in_flight[key]
        self._local._settle(outcome)  # keep the fallback's counts as they would be

    async def _finish(self, outcome: Outcome) -> None:
        await self._limits.settle(outcome, self._windows, self._login)
