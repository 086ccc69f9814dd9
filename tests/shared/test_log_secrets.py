"""Tokens never reach a log, in any spelling of the query string.

Sanic's `request.args` percent-decodes parameter names, so `?%74oken=<JWT>` authenticates
like `?token=<JWT>`; redaction that matches the literal `token=` let the whole JWT into the
gateway's and the todo service's access logs. Both log formats (`LOG_FORMAT=json|text`)
write the same redacted fields.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.shared.conftest import all_logs
from tests.stack import LocalStack, start_stack
from tests.todo.wsclient import Tokens, new_user_id

# Each spelling of the token parameter; the JWT goes where `{}` is.
SPELLINGS = [
    "token={}",
    "%74oken={}",
    "%74%6F%6B%65%6E={}",
    "to%6ben={}",
    "TOKEN={}",
    "%2574oken={}",
    "since=0&%74oken={}",
    "x=1;token={}",
    "access_token={}",
    "refresh%5Ftoken={}",
    "password={}",
]
# The ones Sanic's `request.args.get("token")` reads as the token.
AUTHENTICATING = {
    "token={}",
    "%74oken={}",
    "%74%6F%6B%65%6E={}",
    "to%6ben={}",
    "since=0&%74oken={}",
}


@pytest.fixture(scope="module")
def text_stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[LocalStack]:
    """The same stack as `stack`, writing readable text lines."""
    running = start_stack(
        tmp_path_factory.mktemp("text-log-stack"), jwt_env, every_env={"LOG_FORMAT": "text"}
    )
    yield running
    running.stop()


@pytest.fixture(params=["json", "text"])
def log_stack(request: pytest.FixtureRequest) -> LocalStack:
    stack: LocalStack = request.getfixturevalue(
        "stack" if request.param == "json" else "text_stack"
    )
    return stack


async def first_message(url: str) -> dict[str, object]:
    async with connect(url, open_timeout=5) as ws:
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))


async def test_no_spelling_of_the_token_reaches_a_log(
    log_stack: LocalStack, jwt_secret: str
) -> None:
    stack = log_stack
    tokens = Tokens(jwt_secret)
    used: list[str] = []
    for spelling in SPELLINGS:
        for base in (stack.gateway.ws_url, stack.todo.ws_url):
            token = tokens.valid(new_user_id())
            used.append(token)
            first = await first_message(f"{base}/ws_ep/ws?{spelling.format(token)}")
            authenticated = first["type"] in ("todos_list", "todos_delta")
            assert authenticated is (spelling in AUTHENTICATING), (spelling, first)
        # The same spellings on plain HTTP through the gateway, to both services.
        for path in ("/auth/me", "/ws_ep/asyncapi.json"):
            token = tokens.valid(new_user_id())
            used.append(token)
            httpx.get(f"{stack.url}{path}?{spelling.format(token)}", timeout=5)
    dotted = tokens.valid(new_user_id())
    used.append(dotted)
    await first_message(f"{stack.gateway.ws_url}/ws_ep/ws?token={dotted.replace('.', '%2E')}")
    time.sleep(0.3)

    logs = all_logs(stack)
    for token in used:
        _header, payload, signature = token.split(".")
        assert payload not in logs and signature not in logs, token
    assert "%74oken=[redacted]" in logs  # the access lines are there, redacted
    text_format = stack.gateway.env.get("LOG_FORMAT") == "text"
    assert (" INFO  access  GET " in logs) is text_format  # and in the format asked for
