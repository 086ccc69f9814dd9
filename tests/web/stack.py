"""The browser tests' view of the real stack (see tests/stack.py)."""

from __future__ import annotations

import httpx

from tests.stack import LocalStack as WebStack
from tests.stack import start_stack

__all__ = ["WebStack", "login_tokens", "start_stack"]


def login_tokens(stack: WebStack, username: str, password: str) -> dict[str, str]:
    """Log in through the gateway's REST API (a second client of the same user)."""
    response = httpx.post(
        stack.url + "/auth/login", json={"username": username, "password": password}, timeout=10
    )
    response.raise_for_status()
    return dict(response.json())
