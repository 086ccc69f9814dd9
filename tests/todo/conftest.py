"""Real todo services for the tests: one per database backend per test module.

A server start costs a second or two, so a module shares one per backend and each test
works with fresh random user ids (users never see each other's todos, which is itself
under test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_db_url
from tests.gateway.conftest import start_gateway
from tests.support import ServiceProcess, require_postgres
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_user_socket

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def require_backend(backend: str) -> None:
    if backend == "postgres":
        require_postgres()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


def start_todo_service(
    jwt_env: dict[str, str], db_url: str, log_dir: Path, **env: str
) -> ServiceProcess:
    server = ServiceProcess(
        "todo_ws_service", {**jwt_env, "TODO_DB_URL": db_url, **env}, log_dir, name="todo"
    )
    return server.start()


@pytest.fixture(scope="module")
def todo_db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from make_db_url(backend, "todo", tmp_path_factory.mktemp(f"todo-{backend}"))


@pytest.fixture(scope="module")
def todo_server(
    todo_db_url: str, jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The todo service with the contract's default limits."""
    server = start_todo_service(jwt_env, todo_db_url, tmp_path_factory.mktemp("logs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tokens(jwt_secret: str) -> Tokens:
    return Tokens(jwt_secret)


@pytest.fixture
def user_id() -> int:
    return new_user_id()


@pytest.fixture
async def sock(todo_server: ServiceProcess, tokens: Tokens, user_id: int) -> AsyncIterator[Socket]:
    """An open socket of a fresh user, past its (empty) first list."""
    s = await open_user_socket(todo_server, tokens, user_id)
    yield s
    await s.close()


@dataclass
class GatewayStack:
    """A todo service with a gateway in front: the sync tests talk to `gateway` only."""

    todo: ServiceProcess
    gateway: ServiceProcess

    def stop(self) -> None:
        self.gateway.stop()
        self.todo.stop()


def start_gateway_stack(
    jwt_env: dict[str, str], db_url: str, log_dir: Path, **env: str
) -> GatewayStack:
    """`start_todo_service(...)` plus a gateway whose `/ws_ep/*` upstream it is.

    The gateway's auth upstream is the todo service too: these tests mint their tokens.
    """
    todo = start_todo_service(jwt_env, db_url, log_dir, **env)
    try:
        gateway = start_gateway([todo], [todo], log_dir)
    except BaseException:
        todo.stop()
        raise
    return GatewayStack(todo, gateway)


@pytest.fixture(scope="module")
def gateway_stack(
    todo_db_url: str, jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayStack]:
    """The module's todo service (rate limit off: some tests send bursts) and its gateway."""
    stack = start_gateway_stack(
        jwt_env, todo_db_url, tmp_path_factory.mktemp("gateway-stack"), WS_RATE_LIMIT="0"
    )
    yield stack
    stack.stop()


@pytest.fixture
async def close_sync_sockets() -> AsyncIterator[None]:
    """Close what `synctools.connect` opened during the test, even when it failed."""
    from tests.todo.synctools import OPENED

    yield
    while OPENED:
        await OPENED.pop().close()
