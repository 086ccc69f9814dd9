"""`python -m <service> --host H --port P`: the one way every service is started."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial

from sanic import Sanic
from sanic.worker.loader import AppLoader


def parse_args(prog: str, default_port: int, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=f"Run the {prog}.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"default {default_port}")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--debug", action="store_true", help="Sanic debug mode (never in prod)")
    return parser.parse_args(argv)


def run_service(
    prog: str, default_port: int, create_app: Callable[[], Sanic], argv: list[str] | None = None
) -> None:
    """Parse the command line and serve the app built by `create_app` until stopped."""
    args = parse_args(prog, default_port, argv)
    loader = AppLoader(factory=partial(create_app))
    app = loader.load()
    app.prepare(
        host=args.host,
        port=args.port,
        workers=args.workers,
        debug=args.debug,
        access_log=True,
        motd=False,
    )
    Sanic.serve(primary=app, app_loader=loader)
