"""Attempt counting in sliding windows: the auth service's limits against guessing and abuse.

- failed logins per (username, client address): `LOGIN_MAX_FAILURES` in `LOGIN_FAILURE_WINDOW`;
- failed logins per client address, whatever the usernames: `LOGIN_MAX_PER_ADDRESS` in the
  same window;
- registrations per client address: `REGISTER_MAX_PER_ADDRESS` in `REGISTER_WINDOW`.

Past a limit, attempts are refused (429) until the oldest counted one leaves the window.

The handlers see one interface, `AttemptLimits`: `start_login` / `start_registration`
answer an `Attempt`, refused (`retry_after` > 0) or counted from that moment on, and the
handler settles it (`succeeded()`, `void()`, or a failure by default when its `async with`
block ends). Two implementations:

- `MemoryLimits` (the default): the windows below, in this process's memory. A handler
  checks and records in one step of the event loop (no `await` between), so a key never
  counts more than its limit. With N workers or replicas a client gets up to N times the
  budget, and a restart forgets it.
- `auth_service.throttle_redis.RedisLimits` (when `REDIS_URL` is set): the same windows
  in Redis, shared by every worker and replica.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Generic, Literal, Protocol, TypeVar

from shared.settings import AuthSettings

# Past this many keys, keys with nothing left inside the window are dropped.
MAX_TRACKED_KEYS = 100_000

K = TypeVar("K", bound=Hashable)


class SlidingWindowCounter(Generic[K]):
    """Events per key within the last `window` seconds; a `limit` of 0 turns it off."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[K, deque[float]] = {}
        self._sweep_at = MAX_TRACKED_KEYS

    def _recent(self, key: K, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def retry_after(self, key: K) -> int:
        """Seconds to wait before the next attempt may count (0: go ahead)."""
        if not self.limit:
            return 0
        now = self._clock()
        events = self._recent(key, now)
        if events is None or len(events) < self.limit:
            return 0
        # Refused until enough old events leave the window to fall under the limit.
        oldest_that_counts = events[len(events) - self.limit]
        return max(1, math.ceil(oldest_that_counts + self.window - now))

    def add(self, key: K, stamp: float | None = None) -> float:
        """Count one event for `key` now; returns its stamp (for `take_back`)."""
        now = self._clock() if stamp is None else stamp
        if not self.limit:
            return now
        events = self._recent(key, now)
        if events is None:
            if len(self._events) >= self._sweep_at:
                self._sweep(now)
            events = self._events.setdefault(key, deque())
        events.append(now)
        return now

    def take_back(self, key: K, stamp: float) -> None:
        """Uncount one event added with `stamp` (it turned out not to count)."""
        events = self._events.get(key)
        if events is not None and stamp in events:
            events.remove(stamp)
            if not events:
                del self._events[key]

    def clear(self, key: K) -> None:
        self._events.pop(key, None)

    def _sweep(self, now: float) -> None:
        for key in list(self._events):
            self._recent(key, now)
        # When most keys are live, wait for the dict to double before sweeping again, so
        # that a flood of keys costs amortized O(1) per event rather than a sweep each.
        self._sweep_at = max(MAX_TRACKED_KEYS, 2 * len(self._events))


class LoginThrottle:
    """Failed logins per (username, address) and per address; refuses past either limit.

    An attempt counts as a failure from the moment it starts (`record_failure`), so that
    parallel guesses can't all slip under a limit while their hashes run. A success clears
    the pair's failures and uncounts its own attempt from the address's budget (the address
    limit counts failures only); an attempt that never ran (`take_back`) counts nowhere.
    """

    def __init__(
        self,
        max_failures: int,
        window: float,
        max_per_address: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.per_user: SlidingWindowCounter[tuple[str, str]] = SlidingWindowCounter(
            max_failures, window, clock
        )
        self.per_address: SlidingWindowCounter[str] = SlidingWindowCounter(
            max_per_address, window, clock
        )

    @staticmethod
    def key(username: str, address: str) -> tuple[str, str]:
        # Usernames are unique regardless of case, so "Alice" and "alice" share a budget.
        return username.lower(), address

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before trying again (0: go ahead)."""
        return max(
            self.per_user.retry_after(self.key(username, address)),
            self.per_address.retry_after(address),
        )

    def record_failure(self, username: str, address: str) -> float:
        """Count an attempt as failed; returns its stamp for `record_success`/`take_back`."""
        stamp = self._clock()
        self.per_user.add(self.key(username, address), stamp)
        self.per_address.add(address, stamp)
        return stamp

    def record_success(self, username: str, address: str, stamp: float | None = None) -> None:
        self.per_user.clear(self.key(username, address))
        if stamp is not None:
            self.per_address.take_back(address, stamp)

    def take_back(self, username: str, address: str, stamp: float) -> None:
        self.per_user.take_back(self.key(username, address), stamp)
        self.per_address.take_back(address, stamp)


Outcome = Literal["failure", "success", "void"]


class Attempt:
    """One login or registration attempt, counted from its start until it is settled.

    `retry_after` > 0: refused, nothing counted. Otherwise the handler runs the attempt
    inside `async with attempt:` and calls `succeeded()` (a login that worked: it clears
    the pair's failures and is no failure at the address) or `void()` (refused as `busy`
    before any work: counted nowhere). Anything else, an exception included, leaves it
    counted: a failed login, or a registration that got to hashing.
    """

    def __init__(self, retry_after: int = 0) -> None:
        self.retry_after = retry_after
        self.outcome: Outcome | None = None

    def succeeded(self) -> None:
        self._settle("success")

    def void(self) -> None:
        self._settle("void")

    def _settle(self, outcome: Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self._apply(outcome)

    def _apply(self, outcome: Outcome) -> None:
        """Update the counts at once (no `await`), so the next check sees them."""

    async def _finish(self, outcome: Outcome) -> None:
        """What has to wait for I/O, when the attempt ends."""

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._settle("failure")
        assert self.outcome is not None
        await self._finish(self.outcome)


class LoginAttempt(Attempt):
    """A login attempt counted in a `LoginThrottle` (as a failure until settled)."""

    def __init__(self, throttle: LoginThrottle, username: str, address: str) -> None:
        super().__init__()
        self._throttle, self._username, self._address = throttle, username, address
        # Counted as a failure until proven otherwise, so that concurrent guesses can't
        # all slip under the limit while their hashes are being checked.
        self._stamp = throttle.record_failure(username, address)

    def _apply(self, outcome: Outcome) -> None:
        if outcome == "success":
            self._throttle.record_success(self._username, self._address, self._stamp)
        elif outcome == "void":
            self._throttle.take_back(self._username, self._address, self._stamp)


class CountedAttempt(Attempt):
    """An attempt counted in a `SlidingWindowCounter` unless voided."""

    def __init__(self, counter: SlidingWindowCounter[str], key: str) -> None:
        super().__init__()
        self._counter, self._key = counter, key
        self._stamp = counter.add(key)

    def _apply(self, outcome: Outcome) -> None:
        if outcome == "void":
            self._counter.take_back(self._key, self._stamp)


class AttemptLimits(Protocol):
    """What the handlers use; `MemoryLimits` or `RedisLimits`."""

    async def start_login(self, username: str, address: str) -> Attempt: ...

    async def start_registration(self, address: str) -> Attempt: ...

    async def close(self) -> None: ...


class MemoryLimits:
    """The limits in this process's memory (the default without `REDIS_URL`)."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.logins = LoginThrottle(
            settings.login_max_failures,
            settings.login_failure_window,
            settings.login_max_per_address,
            clock,
        )
        self.registrations: SlidingWindowCounter[str] = SlidingWindowCounter(
            settings.register_max_per_address, settings.register_window, clock
        )

    def login_now(self, username: str, address: str) -> Attempt:
        """Check and count in one step (no `await`)."""
        retry_after = self.logins.retry_after(username, address)
        if retry_after:
            return Attempt(retry_after)
        return LoginAttempt(self.logins, username, address)

    def registration_now(self, address: str) -> Attempt:
        retry_after = self.registrations.retry_after(address)
        if retry_after:
            return Attempt(retry_after)
        return CountedAttempt(self.registrations, address)

    async def start_login(self, username: str, address: str) -> Attempt:
        return self.login_now(username, address)

    async def start_registration(self, address: str) -> Attempt:
        return self.registration_now(address)

    async def close(self) -> None:
        return None


def build_limits(settings: AuthSettings) -> AttemptLimits:
    """`RedisLimits` when `REDIS_URL` is set, else `MemoryLimits`."""
    if settings.redis_url:
        from auth_service.throttle_redis import RedisLimits

        return RedisLimits(settings)
    return MemoryLimits(settings)
