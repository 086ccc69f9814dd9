"""A client's X-Request-ID is used only when it is 1-64 chars of [A-Za-z0-9._-].

Used means echoed in the response, written on the log lines of the request and, by the
gateway, forwarded to the upstream (one id across both services' lines). Any other value
is replaced by an id of the service's own and appears nowhere.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect

from shared.request_ids import is_usable_request_id
from tests.shared.conftest import SERVICES, all_logs, service_of
from tests.stack import LocalStack


def bad_ids(marker: str) -> list[str]:
    """Values a client may send that must not be used, each carrying `marker`."""
    return [
        f"<script>{marker}</script>",
        marker * 3,  # 96 chars: too long
        f"{marker} {marker}",
        f"{marker}/..",
        f'"{marker}"',
        f"{marker}%0d%0aSet-Cookie:x",
        f"{marker};drop",
    ]


def test_a_usable_id_is_echoed_and_forwarded_unchanged(stack: LocalStack) -> None:
    sent = f"Req_{secrets.token_hex(6)}.v-1"
    reply = httpx.get(f"{stack.url}/auth/me", headers={"X-Request-ID": sent}, timeout=5)
    assert reply.status_code == 401
    assert reply.headers["x-request-id"] == sent
    time.sleep(0.3)  # let the log lines reach the files
    # The auth service got it from the gateway: its access line carries the same id.
    assert f'"request_id":"{sent}"' in stack.auth.log_path.read_text()
    assert f'"request_id":"{sent}"' in stack.gateway.log_path.read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_an_unusable_id_is_replaced_and_appears_nowhere(stack: LocalStack, service: str) -> None:
    marker = secrets.token_hex(16)
    base = service_of(stack, service).url
    path = "/auth/me" if service != "todo" else "/ws_ep/healthz"
    for sent in bad_ids(marker):
        reply = httpx.get(base + path, headers={"X-Request-ID": sent}, timeout=5)
        assert reply.status_code < 500
        echoed = reply.headers["x-request-id"]
        assert marker not in echoed
        uuid.UUID(echoed)  # one of the service's own
        assert marker not in reply.text
    time.sleep(0.3)
    assert marker not in all_logs(stack)


async def test_an_unusable_id_on_a_websocket_handshake_appears_nowhere(stack: LocalStack) -> None:
    marker = secrets.token_hex(16)
    for sent in bad_ids(marker):
        async with connect(
            f"{stack.gateway.ws_url}/ws_ep/ws", additional_headers={"X-Request-ID": sent}
        ) as ws:
            assert marker not in str(ws.response.headers)
            await asyncio.wait_for(ws.recv(), 5)  # auth_failed: no token
    await asyncio.sleep(0.3)
    assert marker not in all_logs(stack)


def test_a_missing_id_gets_one_of_the_services_own(stack: LocalStack) -> None:
    reply = httpx.get(f"{stack.url}/healthz", timeout=5)
    uuid.UUID(reply.headers["x-request-id"])


@pytest.mark.parametrize(
    ("value", "usable"),
    [
        ("a", True),
        ("A" * 64, True),
        ("0123-abc_DEF.9", True),
        ("", False),
        ("A" * 65, False),
        ("a b", False),
        ("a/b", False),
        ("é", False),
        (None, False),
    ],
)
def test_is_usable_request_id(value: str | None, usable: bool) -> None:
    assert is_usable_request_id(value) is usable
