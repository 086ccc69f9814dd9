"""Password hashing: argon2id with OWASP's parameters, always off the event loop.

An argon2 hash takes tens of milliseconds of CPU; run on the loop, one login would stall
every other request of the process. `PasswordHasher` runs each hash in a small thread pool
(argon2-cffi releases the GIL), whose size also bounds the memory argon2 uses at once.

The pool's queue is bounded too (`HASH_QUEUE_MAX` hashes waiting for a thread): past it a
hash is refused at once with `Busy` (503) instead of queueing, so a flood of logins or
registrations can't build an ever longer wait for everyone, nor unbounded memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from passlib.context import CryptContext

from auth_service.errors import Busy
from auth_service.metrics import AuthMetrics

logger = logging.getLogger("auth_service.passwords")

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19_456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)

T = TypeVar("T")


class PasswordHasher:
    """Hashes and verifies passwords in worker threads."""

    def __init__(
        self, max_queued: int, max_threads: int | None = None, metrics: AuthMetrics | None = None
    ) -> None:
        threads = max_threads or min(4, os.cpu_count() or 2)
        self._metrics = metrics or AuthMetrics()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="argon2")
        # One slot per hash running or waiting; taken on the loop, given back by the pool.
        self._slots = threading.BoundedSemaphore(threads + max_queued)
        self._dummy_hash: str | None = None

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if not self._slots.acquire(blocking=False):
            logger.warning("password hashing queue full; answering busy")
            raise Busy()
        self._metrics.hashes_waiting.inc()
        try:
            job = self._pool.submit(self._timed, func, *args)
        except BaseException:
            self._metrics.hashes_waiting.dec()
            self._slots.release()
            raise
        # The slot is freed when the hash is done, not when its caller stops waiting: a
        # cancelled request leaves its hash running in the pool, and it still counts.
        job.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(job)

    def _timed(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func` in a hashing thread, keeping the queue gauges and the timing."""
        metrics = self._metrics
        metrics.hashes_waiting.dec()
        metrics.hashes_running.inc()
        started = time.perf_counter()
        try:
            return func(*args)
        finally:
            metrics.hash_seconds.observe(time.perf_counter() - started)
            metrics.hashes_running.dec()

    async def hash(self, password: str) -> str:
        """The argon2id hash of `password`."""
        return str(await self._run(password_context.hash, password))

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Check `password`; returns (ok, new hash if the stored one uses old parameters).

        With no stored hash (unknown user) it verifies against a dummy hash anyway, so the
        answer takes as long as for a wrong password.
        """
        if password_hash is None:
            await self._run(password_context.verify, password, await self._dummy())
            return False, None
        ok, new_hash = await self._run(password_context.verify_and_update, password, password_hash)
        return bool(ok), new_hash

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def warm_up(self) -> None:
        """Compute the dummy hash now, so the first unknown-user login isn't slower."""
        await self._dummy()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
