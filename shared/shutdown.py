"""Stop signals handled once and at a safe moment, in the worker and in the main process.

Worker: `kill -TERM -<pgid>` (what systemd and our tests do) or Ctrl-C reaches both
Sanic's main process and its worker; the main process then relays the stop to the worker
as SIGINT. In Sanic 25.12 that second signal stops the worker's loop again in the middle
of its shutdown (`RuntimeError: Event loop stopped before Future completed`): the
`after_server_stop` listeners never run, the SQLite thread is never closed, and the
process hangs. So the first SIGINT/SIGTERM stops the worker and later ones are ignored.

Main process: Sanic 25.12's `WorkerManager` stops the workers from inside the signal
handler, and that handler writes the workers' states through the multiprocessing manager
connection the interrupted code may be using at that very moment (the monitor loop reads
those states every 0.1 s, in `_sync_states`). The handler's request and the interrupted
one then read each other's replies: the interrupted `worker_state[name]` gets `None` and
the main process dies with `AttributeError: 'NoneType' object has no attribute 'get'`
(exit status 1, workers orphaned). A signal during start-up, before the main process has
seen every worker's acknowledgement, overwrites that acknowledgement and leaves the
manager waiting for it for ever. So the main process's handler only records the signal;
the manager acts on it at the top of its next monitor cycle (within 0.1 s), where it
touches no shared state, and only once start-up is over.
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

from sanic import Sanic
from sanic.worker.manager import WorkerManager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_once(app: Sanic) -> None:
    """Make stop signals safe: idempotent in the worker, deferred to a safe point in the
    main process. Call it after registering every other `before_server_stop` listener
    (those run in reverse order: this one must run first)."""

    @app.main_process_ready
    async def defer_main_process_signals(app: Sanic) -> None:
        defer_stop_signals(app.manager)

    @app.after_server_start
    async def replace_signal_handlers(app: Sanic) -> None:
        # Sanic has just installed its own handlers (app.stop on each signal); wrap them.
        loop = asyncio.get_running_loop()
        stopping = False

        def stop_once() -> None:
            nonlocal stopping
            if not stopping:
                stopping = True
                app.stop(terminate=False)

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop_once)

    @app.before_server_stop
    async def ignore_further_signals(app: Sanic) -> None:
        # Sanic removed the loop's handlers before this runs, restoring the defaults.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def defer_stop_signals(manager: WorkerManager) -> None:
    """Replace the manager's SIGINT/SIGTERM handlers (see the module's docstring): the
    first stop signal is acted on by the monitor loop itself, between two cycles; one
    arriving once the shutdown has begun still kills the workers at once, as in Sanic."""
    pending: list[int] = []
    shutdown_signal = manager.shutdown_signal
    poll_monitor = manager._poll_monitor

    def record_signal(signum: int, frame: FrameType | None) -> None:
        if manager._shutting_down:
            shutdown_signal(signum, frame)  # Sanic's "interrupted: kill" (no shared state)
        elif not pending:
            pending.append(signum)

    def stop_then_poll() -> object:
        # The monitor loop calls this first in every cycle, between its state reads, and
        # only after start-up has been acknowledged.
        if pending and not manager._shutting_down:
            shutdown_signal(pending[0], None)  # queues the loop's exit and stops workers
        return poll_monitor()

    manager._poll_monitor = stop_then_poll  # type: ignore[method-assign,assignment]
    for sig in STOP_SIGNALS:
        signal.signal(sig, record_signal)
