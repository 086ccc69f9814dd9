"""The real stack (auth, todo, gateway processes on SQLite) with a short head deadline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack import LocalStack, start_stack
from tests.support import ServiceProcess

HEADER_TIMEOUT = 2.0


@pytest.fixture(scope="package")
def stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[LocalStack]:
    """One stack for the package's tests; each test uses its own users and markers."""
    running = start_stack(
        tmp_path_factory.mktemp("hardened-stack"),
        jwt_env,
        every_env={"HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT)},
    )
    yield running
    running.stop()


SERVICES = ["gateway", "auth", "todo"]


def service_of(stack: LocalStack, name: str) -> ServiceProcess:
    return {"gateway": stack.gateway, "auth": stack.auth, "todo": stack.todo}[name]


def all_logs(stack: LocalStack) -> str:
    """Everything the three services have written so far (their whole log files)."""
    return "\n".join(
        service.log_path.read_text(errors="replace")
        for service in (stack.auth, stack.todo, stack.gateway)
    )
