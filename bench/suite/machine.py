"""What the report records about the machine and the tree the numbers came from."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

from bench.suite.nginx import nginx_version
from bench.suite.procstat import cpu_model
from tests.support import REPO_ROOT


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    # Read-only: --no-optional-locks keeps `git status` from refreshing the index.
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


@dataclass
class Machine:
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    cpu: str = field(default_factory=cpu_model)
    cores: int = field(default_factory=lambda: os.cpu_count() or 0)
    load_before: tuple[float, float, float] = field(default_factory=os.getloadavg)
    load_after: tuple[float, float, float] | None = None
    python: str = field(default_factory=lambda: sys.version.split()[0])
    kernel: str = field(default_factory=platform.release)
    commit: str = ""
    dirty: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def collect(self) -> Machine:
        self.commit = _git("rev-parse", "--short", "HEAD") or "unknown"
        self.dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        self.versions = {
            "sanic": _version("sanic"),
            "websockets": _version("websockets"),
            "picows": _version("picows"),
            "uvloop": _version("uvloop"),
            "nginx": nginx_version(),
        }
        return self

    def finish(self, seconds: float) -> None:
        self.load_after = os.getloadavg()
        self.seconds = seconds

    def lines(self) -> list[str]:
        def load(values: tuple[float, float, float] | None) -> str:
            return " / ".join(f"{v:.2f}" for v in values) if values else "-"

        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        commit = self.commit + (" with uncommitted changes" if self.dirty else "")
        return [
            f"- date: {self.started}; the whole run took {self.seconds / 60:.1f} min",
            f"- CPU: {self.cpu}, {self.cores} cores (`os.cpu_count()`); kernel {self.kernel}",
            f"- load average (1/5/15 min) before: {load(self.load_before)};"
            f" after: {load(self.load_after)}",
            f"- Python {self.python}; {versions}",
            f"- git commit: {commit}",
            "- client, servers and proxies all share these cores (see each run's client CPU)",
        ]
