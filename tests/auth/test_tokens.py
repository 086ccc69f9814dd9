"""Refresh rotation and reuse detection, logout, and `/auth/me` refusing bad tokens."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.auth.conftest import AuthApi

INVALID_REFRESH = {
    "detail": "The refresh token is invalid, expired, spent or revoked.",
    "code": "invalid_refresh_token",
}


def test_refresh_rotates_and_spends_the_old_token(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    first = auth_api.tokens(username)
    response = auth_api.refresh(first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert auth_api.me(second["access_token"]).json()["username"] == username
    # The new one works once more; the chain goes on.
    third = auth_api.refresh(second["refresh_token"])
    assert third.status_code == 200


def test_reusing_a_spent_token_revokes_the_whole_family(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    first = auth_api.tokens(username)
    other_session = auth_api.tokens(username)
    second = auth_api.refresh(first["refresh_token"]).json()

    reuse = auth_api.refresh(first["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json() == INVALID_REFRESH
    # The newer token of that family is dead too...
    assert auth_api.refresh(second["refresh_token"]).status_code == 401
    # ...but another login's family is untouched.
    assert auth_api.refresh(other_session["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"refresh_token": "not-a-token-we-issued"}, 401),
        ({"refresh_token": ""}, 422),
        ({}, 422),
        ({"refresh_token": 42}, 422),
    ],
    ids=["unknown", "empty", "missing", "not-a-string"],
)
def test_bad_refresh_requests(auth_api: AuthApi, body: dict[str, Any], status: int) -> None:
    response = auth_api.http.post("/auth/refresh", json=body)
    assert response.status_code == status
    expected_code = "invalid_refresh_token" if status == 401 else "validation_error"
    assert response.json()["code"] == expected_code


def test_logout_revokes_and_is_idempotent(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    session = auth_api.tokens(username)
    rotated = auth_api.refresh(session["refresh_token"]).json()
    kept = auth_api.tokens(username)

    response = auth_api.logout(rotated["refresh_token"])
    assert response.status_code == 204
    assert response.content == b""
    assert auth_api.refresh(rotated["refresh_token"]).json() == INVALID_REFRESH
    # Logging out again, with a spent token of the family, or with junk: still 204.
    assert auth_api.logout(rotated["refresh_token"]).status_code == 204
    assert auth_api.logout(session["refresh_token"]).status_code == 204
    assert auth_api.logout("never-issued").status_code == 204
    # Logout ends one session, not the user's other logins.
    assert auth_api.refresh(kept["refresh_token"]).status_code == 200


def test_logout_without_a_token_is_422(auth_api: AuthApi) -> None:
    response = auth_api.http.post("/auth/logout", json={})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "refresh_token", "message": "is required"}]


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "username": "someone",
        "iss": "todo-auth",
        "aud": "todo-api",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _forged_tokens(user_id: str, secret: str) -> dict[str, str]:
    return {
        "wrong-key": jwt.encode(_claims(user_id), "another-secret-" * 4, algorithm="HS256"),
        "expired": jwt.encode(
            _claims(user_id, iat=int(time.time()) - 1000, exp=int(time.time()) - 60),
            secret,
            algorithm="HS256",
        ),
        "alg-none": jwt.encode(_claims(user_id), None, algorithm="none"),
        "other-alg": jwt.encode(_claims(user_id), secret, algorithm="HS512"),
        "wrong-aud": jwt.encode(_claims(user_id, aud="someone-else"), secret, algorithm="HS256"),
        "wrong-iss": jwt.encode(_claims(user_id, iss="evil"), secret, algorithm="HS256"),
        "no-sub": jwt.encode(_claims(user_id, sub=None), secret, algorithm="HS256"),
        "no-exp": jwt.encode(_claims(user_id, exp=None), secret, algorithm="HS256"),
        "unknown-user": jwt.encode(_claims("987654321"), secret, algorithm="HS256"),
        "non-numeric-sub": jwt.encode(_claims("abc"), secret, algorithm="HS256"),
        "garbage": "not.a.jwt",
    }


FORGERIES = list(_forged_tokens("1", "x" * 64))


@pytest.mark.parametrize("kind", FORGERIES)
def test_me_refuses_bad_tokens(auth_api: AuthApi, jwt_secret: str, kind: str) -> None:
    username = auth_api.new_user()
    user_id = str(auth_api.me(auth_api.tokens(username)["access_token"]).json()["id"])
    token = _forged_tokens(user_id, jwt_secret)[kind]
    response = auth_api.me(token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    expected = "token_expired" if kind == "expired" else "invalid_token"
    assert body["code"] == expected
    assert username not in response.text


def test_a_correctly_signed_token_for_the_user_is_accepted(
    auth_api: AuthApi, jwt_secret: str
) -> None:
    # The control for the forgeries above: the same claims, signed right, pass.
    username = auth_api.new_user()
    user_id = str(auth_api.me(auth_api.tokens(username)["access_token"]).json()["id"])
    token = jwt.encode(_claims(user_id), jwt_secret, algorithm="HS256")
    assert auth_api.me(token).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer  x y", "Basic dXNlcjpwYXNz", "Token abc"],
    ids=["absent", "empty", "no-token", "two-words", "basic", "other-scheme"],
)
def test_me_without_a_bearer_token(auth_api: AuthApi, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = auth_api.http.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "invalid_token"


async def test_concurrent_refreshes_with_one_token_yield_at_most_one_pair(
    auth_api: AuthApi,
) -> None:
    username = auth_api.new_user()
    token = auth_api.tokens(username)["refresh_token"]
    async with httpx.AsyncClient(base_url=auth_api.url, timeout=10) as client:
        responses = await asyncio.gather(
            *(client.post("/auth/refresh", json={"refresh_token": token}) for _ in range(2))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401], statuses
    winner = next(r for r in responses if r.status_code == 200).json()
    auth_api.remember(winner["access_token"], winner["refresh_token"])
    # The second presentation was a reuse: the family, winner's new token included, is dead.
    assert auth_api.refresh(winner["refresh_token"]).status_code == 401
