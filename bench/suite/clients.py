"""The parent's handle on the load generator processes (`bench/suite/worker.py`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson

from tests.support import REPO_ROOT

Json = dict[str, Any]
T = TypeVar("T")


class WorkerError(RuntimeError):
    pass


class Worker:
    """One `python -m bench.suite.worker` process; `call` sends a command, returns its answer."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, log: Path) -> Worker:
        with log.open("ab") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.suite.worker",
                cwd=REPO_ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=2**28,
            )
        return cls(proc)

    async def call(self, cmd: str, **args: Any) -> Json:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            self.proc.stdin.write(orjson.dumps({"cmd": cmd, "args": args}) + b"\n")
            await self.proc.stdin.drain()
            line = await self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"load generator exited during {cmd}")
        answer: Json = orjson.loads(line)
        if "error" in answer:
            raise WorkerError(f"{cmd}: {answer['error']}")
        return answer

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Clients:
    """`count` load generator processes, used together: `async with Clients(2, log) as c`."""

    def __init__(self, count: int, log: Path) -> None:
        self.count = count
        self.log = log
        self.workers: list[Worker] = []

    async def __aenter__(self) -> Clients:
        self.workers = list(
            await asyncio.gather(*(Worker.start(self.log) for _ in range(self.count)))
        )
        await self.all("hello")  # every process has imported and is listening
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.gather(*(w.close() for w in self.workers), return_exceptions=True)

    async def each(self, cmd: str, per_worker: list[Json]) -> list[Json]:
        """Send `cmd` to every worker with its own arguments, all at once."""
        return list(
            await asyncio.gather(
                *(w.call(cmd, **args) for w, args in zip(self.workers, per_worker, strict=True))
            )
        )

    async def all(self, cmd: str, **args: Any) -> list[Json]:
        """Send `cmd` with the same arguments to every worker."""
        return await self.each(cmd, [args] * len(self.workers))

    def split(self, items: list[T]) -> list[list[T]]:
        """`items` dealt out round-robin, one share per worker."""
        return [items[i :: self.count] for i in range(self.count)]
