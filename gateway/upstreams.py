"""Replica pools: which upstream replica gets the next request or socket.

Each service behind the gateway is a `ReplicaPool` of base URLs. A replica is *available*
when its last active check passed and no recent connection attempt failed:

- passive health: a refused or timed-out connection marks the replica down for
  `PASSIVE_DOWN_SECONDS`; the request moves on to the next replica;
- active health: `HealthMonitor` polls every replica's `/readyz` and marks it up (200) or
  down (anything else, or no answer). Until its first answer a replica is *unknown*, which
  counts as not ready (the gateway's `/readyz` never vouches for an unchecked replica) but
  still takes its turn in routing.

`ReplicaPool.attempt_order()` gives the available replicas in round-robin order, then the
others. When every replica is marked down they are still all tried (as nginx does), so a
restarted service is used again at once rather than after the next health poll.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.logs import redact

logger = logging.getLogger("gateway.upstreams")

# How long a replica that refused a connection is skipped (nginx's fail_timeout is 10 s).
PASSIVE_DOWN_SECONDS = 10.0
NOT_CHECKED = "not checked yet"


@dataclass
class Replica:
    """One upstream base URL (`http://host:port`, no trailing slash) and its health."""

    url: str
    ready: bool | None = None  # the last active check; None until the first one answers
    down_until: float = 0.0  # passive: skipped until this monotonic time
    last_error: str | None = NOT_CHECKED

    @property
    def ws_url(self) -> str:
        """The same replica with a ws:// or wss:// scheme."""
        return "ws" + self.url.removeprefix("http")

    def is_available(self, now: float) -> bool:
        """Worth trying first: not known to be down (an unchecked replica takes its turn)."""
        return self.ready is not False and now >= self.down_until

    def is_ready(self, now: float) -> bool:
        """Checked and up: what the gateway's `/readyz` vouches for."""
        return self.ready is True and now >= self.down_until

    def state(self, now: float) -> dict[str, Any]:
        if self.ready is None and now >= self.down_until:
            status = "unknown"
        else:
            status = "up" if self.is_ready(now) else "down"
        return {"url": redact(self.url), "status": status, "error": self.last_error}


@dataclass
class ReplicaPool:
    """The replicas of one service, picked round-robin among the available ones."""

    service: str
    replicas: list[Replica]
    _turn: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    @classmethod
    def from_urls(cls, service: str, urls: list[str]) -> ReplicaPool:
        return cls(service, [Replica(url.rstrip("/")) for url in urls])

    def attempt_order(self) -> list[Replica]:
        """Replicas to try for one request: available ones round-robin, then the rest."""
        now = time.monotonic()
        count = len(self.replicas)
        start = next(self._turn) % count
        rotated = self.replicas[start:] + self.replicas[:start]
        available = [r for r in rotated if r.is_available(now)]
        # The rest, least recently failed first: the likeliest to be back.
        unavailable = sorted(
            (r for r in rotated if not r.is_available(now)), key=lambda r: r.down_until
        )
        return available + unavailable

    def has_available(self) -> bool:
        now = time.monotonic()
        return any(r.is_available(now) for r in self.replicas)

    def has_ready(self) -> bool:
        now = time.monotonic()
        return any(r.is_ready(now) for r in self.replicas)

    def mark_failed(self, replica: Replica, reason: str) -> None:
        """Passive health: a connection to `replica` could not be made."""
        replica.down_until = time.monotonic() + PASSIVE_DOWN_SECONDS
        replica.last_error = reason
        logger.warning(
            "%s replica %s marked down for %.0fs: %s",
            self.service,
            redact(replica.url),
            PASSIVE_DOWN_SECONDS,
            reason,
        )

    def mark_succeeded(self, replica: Replica) -> None:
        """A connection to `replica` was made: lift the passive mark (only an active check
        makes a not-ready replica ready: accepting connections is not being ready)."""
        if replica.down_until:
            logger.info(
                "%s replica %s accepts connections again", self.service, redact(replica.url)
            )
            replica.down_until = 0.0
            if replica.ready:
                replica.last_error = None

    def state(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [r.state(now) for r in self.replicas]


class HealthMonitor:
    """Active health: polls each replica's `/readyz` every `interval` seconds."""

    def __init__(
        self, pools: list[ReplicaPool], client: httpx.AsyncClient, interval: float, timeout: float
    ) -> None:
        self._pools = pools
        self._client = client
        self._interval = interval
        self._timeout = timeout

    async def run(self) -> None:
        """Poll forever (until cancelled)."""
        while True:
            try:
                await self.check_all()
            except Exception:
                # Never let one bad round stop the polling for good.
                logger.exception("health check round failed")
            await asyncio.sleep(self._interval)

    async def check_all(self) -> None:
        checks = [self._check(pool, r) for pool in self._pools for r in pool.replicas]
        await asyncio.gather(*checks)

    async def _check(self, pool: ReplicaPool, replica: Replica) -> None:
        try:
            response = await self._client.get(replica.url + "/readyz", timeout=self._timeout)
        except httpx.HTTPError as exc:
            self._set(pool, replica, False, f"readyz: {type(exc).__name__}")
            return
        if response.status_code == 200:
            if replica.ready is False:
                logger.info("%s replica %s is ready", pool.service, redact(replica.url))
            replica.ready = True
            replica.last_error = None
            replica.down_until = 0.0
        else:
            self._set(pool, replica, False, f"readyz answered {response.status_code}")

    @staticmethod
    def _set(pool: ReplicaPool, replica: Replica, ready: bool, reason: str) -> None:
        if replica.ready is not False and not ready:
            logger.warning("%s replica %s not ready: %s", pool.service, redact(replica.url), reason)
        replica.ready = ready
        replica.last_error = reason
