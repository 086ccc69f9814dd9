"""CONTRACT.md section 6 (protocol 1.1): refreshing a socket's token in band, through the
gateway on SQLite and PostgreSQL. `{"action": "refresh_token", "payload": {"token": ...}}`
moves the socket's expiry to the new token's `exp`; a bad token answers `auth_failed` and
leaves the socket open until its current token expires."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from tests.todo.conftest import GatewayStack
from tests.todo.synctools import assert_utc_iso, connect, created
from tests.todo.wsclient import Socket, Tokens, new_user_id

pytestmark = pytest.mark.usefixtures("close_sync_sockets")


def exp_of(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


async def refresh(sock: Socket, token: str, request_id: str = "rt") -> dict[str, Any]:
    return await sock.request(
        {"action": "refresh_token", "payload": {"token": token}, "request_id": request_id}
    )


async def sleep_until(wall_clock: float) -> None:
    await asyncio.sleep(max(0.0, wall_clock - time.time()))


async def assert_expires_at(sock: Socket, exp: int) -> None:
    """The socket gets `token_expired` and close 1008 around `exp` (not much before)."""
    message = await sock.recv(timeout=max(0.0, exp - time.time()) + 4)
    assert message["type"] == "error" and message["code"] == "token_expired", message
    assert time.time() >= exp - 1, "closed before its token expired"
    assert await sock.close_code() == 1008


async def test_refresh_moves_the_expiry_and_the_socket_outlives_its_first_token(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    short = tokens.valid(user, ttl=3)
    sock, first = await connect(gateway_stack, tokens, user, token=short)
    assert first["type"] == "todos_list"
    watcher, _ = await connect(gateway_stack, tokens, user)
    fresh = tokens.valid(user, ttl=60)

    reply = await refresh(sock, fresh)
    assert set(reply) == {"type", "expires_at", "request_id"}, reply
    assert reply["type"] == "token_refreshed" and reply["request_id"] == "rt"
    expires_at = assert_utc_iso(reply["expires_at"])
    assert expires_at == datetime.fromtimestamp(exp_of(fresh), UTC)
    # Only the asker hears about it.
    await watcher.expect_nothing_pending()

    # A failed refresh afterwards leaves the new expiry in place.
    failed = await refresh(sock, "garbage", "bad")
    assert failed["code"] == "auth_failed" and failed["request_id"] == "bad", failed

    await sleep_until(exp_of(short) + 1.5)
    made = await created(sock, "after the first token expired", request_id="late")
    assert made["request_id"] == "late"
    assert await watcher.recv() == {k: v for k, v in made.items() if k != "request_id"}
    await sock.close()
    await watcher.close()


async def test_refresh_to_an_earlier_exp_moves_the_expiry_earlier(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user, ttl=300)
    short = tokens.valid(user, ttl=2)
    reply = await refresh(sock, short)
    assert reply["type"] == "token_refreshed", reply
    assert assert_utc_iso(reply["expires_at"]) == datetime.fromtimestamp(exp_of(short), UTC)
    await assert_expires_at(sock, exp_of(short))


async def test_a_bad_refresh_is_auth_failed_and_the_socket_still_expires_on_time(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    token = tokens.valid(user, ttl=3)
    sock, _ = await connect(gateway_stack, tokens, user, token=token)
    exp = exp_of(token)
    now = int(time.time())
    bad = {
        "another_user": tokens.valid(new_user_id(), ttl=60),
        "expired": tokens.custom(sub=str(user), iat=now - 120, exp=now - 60),
        "garbage": "not-a-jwt",
        "wrong_key": tokens.custom(
            key="another-secret-that-is-long-enough-to-be-ok-1234", sub=str(user)
        ),
        "alg_none": Tokens.alg_none(user),
    }
    for name, token in bad.items():
        reply = await refresh(sock, token, name)
        assert reply["type"] == "error" and reply["code"] == "auth_failed", (name, reply)
        assert reply["request_id"] == name and reply["message"]
    # Still open and working, as the same user.
    made = await created(sock, "still here")
    assert made["data"]["owner_id"] == user
    await assert_expires_at(sock, exp)


async def test_without_a_refresh_a_short_token_expires_with_1008(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    token = tokens.valid(user, ttl=2)
    sock, first = await connect(gateway_stack, tokens, user, token=token)
    assert first["type"] == "todos_list"
    await created(sock, "before expiry")
    await assert_expires_at(sock, exp_of(token))


@pytest.mark.parametrize("token", ["", "x" * 10_000], ids=["empty", "oversized"])
async def test_an_empty_or_oversized_token_is_auth_failed_too(
    gateway_stack: GatewayStack, tokens: Tokens, token: str
) -> None:
    # Verified "exactly as at connect", where an empty or absurd token is `auth_failed`.
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    reply = await refresh(sock, token)
    assert reply["type"] == "error" and reply["code"] == "auth_failed", reply
    assert reply["request_id"] == "rt"
    assert (await created(sock, "still open"))["data"]["owner_id"] == user
    await sock.close()
