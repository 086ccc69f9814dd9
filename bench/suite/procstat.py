"""CPU time and resident memory of a process group, read from /proc.

Every server here is started in its own session (`start_new_session=True`), so its process
group is its main process's pid and holds Sanic's workers (or nginx's) as well.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _group_stats(pgid: int) -> dict[int, list[str]]:
    """The `stat` fields (after the command name) of every process in group `pgid`, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # fields[2] is the process group; [11]/[12] utime/stime; [21] rss in pages.
        if len(fields) > 21 and int(fields[2]) == pgid:
            found[int(entry.name)] = fields
    return found


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of group `pgid` so far."""
    return sum(group_cpu_by_pid(pgid).values())


def group_rss_kib(pgid: int) -> int:
    """Resident memory of group `pgid`, KiB (sum over its processes)."""
    return sum(int(f[21]) * _PAGE_KIB for f in _group_stats(pgid).values())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def group_cpu_by_pid(pgid: int) -> dict[int, float]:
    """User + system CPU seconds so far of each process of group `pgid`, by pid."""
    return {pid: (int(f[11]) + int(f[12])) / _TICK for pid, f in _group_stats(pgid).items()}
