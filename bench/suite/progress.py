"""The progress display: one bar for the whole run, one for the scenario in hand, and the
results as they come (rich when it is installed, plain lines otherwise)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

try:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
except ImportError:  # the suite still runs, with plain output
    Console = None  # type: ignore[assignment,misc]


class Display:
    def __init__(self, scenarios: int) -> None:
        self.started = time.monotonic()
        self._progress: Any = None
        if Console is not None:
            # Not a terminal (a log file, the smoke test): wide lines rather than wrapped ones.
            width = None if sys.stderr.isatty() else 160
            self.console: Any = Console(stderr=True, highlight=False, width=width)
            self._progress = Progress(
                TextColumn("[bold]{task.description:<44}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._overall = self._progress.add_task("all scenarios", total=scenarios)
            self._current = self._progress.add_task("", total=1, visible=False)

    def __enter__(self) -> Display:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def scenario(self, name: str, steps: int) -> None:
        """A scenario begins, in `steps` steps."""
        if self._progress is not None:
            self._progress.update(
                self._current, description=name, total=max(1, steps), completed=0, visible=True
            )
        else:
            print(f"== {name}", flush=True)

    def step(self, text: str) -> None:
        """What the scenario is doing now (the previous step is done)."""
        if self._progress is not None:
            task = self._progress.tasks[self._current]
            name = task.description.split(":")[0]
            self._progress.update(self._current, description=f"{name}: {text}"[:44])
        else:
            print(f"   {text}", flush=True)

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._current)

    def scenario_done(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._overall)

    def log(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False)
        else:
            print(text, flush=True)
