"""Login throttling: failed logins per (username, client address) in a sliding window.

After `max_failures` failures within `window` seconds, further attempts for that pair are
refused (429) until the oldest failure leaves the window; a successful login clears the
pair. State is in memory, per process: with N workers or replicas an attacker gets up to
N times the budget, and a restart forgets it. That bounds online guessing well enough for
this service; a shared store (Redis) would make it exact.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

# Bound on remembered pairs: past it, pairs with no failure inside the window are dropped.
MAX_TRACKED_PAIRS = 100_000


class LoginThrottle:
    """Counts failures per key; `retry_after` says whether (and how long) to refuse."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    @staticmethod
    def key(username: str, address: str) -> tuple[str, str]:
        # Usernames are unique regardless of case, so "Alice" and "alice" share a budget.
        return username.lower(), address

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before trying again (0: go ahead)."""
        now = self._clock()
        failures = self._recent(self.key(username, address), now)
        if failures is None or len(failures) < self.max_failures:
            return 0
        # Refused until enough old failures leave the window to fall under the limit.
        oldest_that_counts = failures[len(failures) - self.max_failures]
        return max(1, math.ceil(oldest_that_counts + self.window - now))

    def record_failure(self, username: str, address: str) -> None:
        now = self._clock()
        key = self.key(username, address)
        failures = self._recent(key, now)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED_PAIRS:
                self._sweep(now)
            failures = self._failures.setdefault(key, deque())
        failures.append(now)
        # Only the newest `max_failures` matter for the decision.
        while len(failures) > self.max_failures:
            failures.popleft()

    def record_success(self, username: str, address: str) -> None:
        self._failures.pop(self.key(username, address), None)

    def _sweep(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
