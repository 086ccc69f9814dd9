"""Fixtures shared by every test package: a JWT secret, and a database per backend.

`db_backend` is parametrized over SQLite and PostgreSQL, so a test that takes a database
URL runs on both. PostgreSQL and Redis are required in CI; outside CI a test that needs
one that is not running skips with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    create_postgres_database,
    drop_postgres_database,
    new_jwt_secret,
    require_postgres,
)


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return new_jwt_secret()


@pytest.fixture(scope="session")
def jwt_env(jwt_secret: str) -> dict[str, str]:
    return {"JWT_SECRET": jwt_secret, "JWT_ISSUER": "todo-auth", "JWT_AUDIENCE": "todo-api"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_postgres()
    return str(request.param)


def make_db_url(backend: str, prefix: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite://{tmp_path / (prefix + '.sqlite3')}"
        return
    url = create_postgres_database(prefix)
    try:
        yield url
    finally:
        drop_postgres_database(url)
