"""`python -m todo_ws_service [--host H] [--port P] [--workers N]`."""

from shared.server import run_service
from todo_ws_service.app import create_app

run_service("todo_ws_service", 8002, create_app)
