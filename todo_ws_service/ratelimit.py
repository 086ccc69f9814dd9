"""A token bucket: `rate` messages a second on average, bursts of up to `burst`; an
expensive answer (a large list) may `charge` more than the one token a message takes."""

from __future__ import annotations

import time


class TokenBucket:
    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one; False means the caller is over its limit."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def charge(self, tokens: float) -> None:
        """Spend `tokens` more for an expensive answer, at most a burst's worth.

        The bucket may go into debt: messages are refused until it has refilled (at most
        (burst + 1) / rate seconds).
        """
        self._tokens -= min(tokens, self._burst)
