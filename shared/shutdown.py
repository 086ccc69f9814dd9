"""Stop once: a worker must not be stopped a second time while it shuts down (all services).

`kill -TERM -<pgid>` (what systemd and our tests do) or Ctrl-C reaches both Sanic's main
process and its worker; the main process then relays the stop to the worker as SIGINT. In
Sanic 25.12 that second signal stops the worker's loop again in the middle of its shutdown
(`RuntimeError: Event loop stopped before Future completed`): the `after_server_stop`
listeners never run, the SQLite thread is never closed, and the process hangs. So the
first SIGINT/SIGTERM stops the worker and later ones are ignored.
"""

from __future__ import annotations

import asyncio
import signal

from sanic import Sanic

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_once(app: Sanic) -> None:
    """Make the worker's stop signals idempotent. Call it after registering every other
    `before_server_stop` listener (those run in reverse order: this one must run first)."""

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
