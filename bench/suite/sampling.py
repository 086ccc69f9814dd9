"""Where a server's worker spends its time: py-spy's samples, and their share by source.

A share of one process's own samples does not move with the machine's speed, which on a
shared VM swings by a quarter from one few-second window to the next: two runs of the
very same code, one after the other, differed by up to 40 % in messages a second. A cost
of a few per cent is read off the profile, not off two such runs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bench.suite.procstat import group_cpu_by_pid

Stacks = list[tuple[list[str], int]]  # (frames, outermost first; number of samples)


async def sample(pgid: int, start: float, seconds: float, out: Path) -> Stacks:
    """py-spy on the busiest process of group `pgid` (the Sanic worker) from `start`
    (a `time.monotonic()` moment) for `seconds`, 250 samples a second, without pausing it."""
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    busy = group_cpu_by_pid(pgid)
    worker = max(busy, key=lambda pid: busy[pid])
    spy = str(Path(sys.executable).parent / "py-spy")
    process = await asyncio.create_subprocess_exec(
        *(spy, "record", "--pid", str(worker), "--rate", "250", "--nonblocking"),
        *("--format", "raw", "--output", str(out), "--duration", str(max(1, round(seconds)))),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        return []
    return await asyncio.to_thread(_read_stacks, out)


def _read_stacks(out: Path) -> Stacks:
    """py-spy's raw output: one stack a line, its frames joined by ';', then its count."""
    stacks: Stacks = []
    if out.exists():
        for line in out.read_text().splitlines():
            frames, _, count = line.rpartition(" ")
            if count.isdigit():
                stacks.append((frames.split(";"), int(count)))
    return stacks


def share(stacks: Stacks, sources: tuple[str, ...]) -> tuple[float, int]:
    """The share of samples with a frame from any of `sources` (path fragments), and the
    number of samples in all."""
    total = sum(count for _, count in stacks)
    hits = sum(count for frames, count in stacks if any(s in f for f in frames for s in sources))
    return (hits / total if total else 0.0), total
