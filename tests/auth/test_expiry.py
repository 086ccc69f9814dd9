"""Tokens really expire: a server whose access and refresh tokens live one second."""

from __future__ import annotations

import time

import pytest

from tests.auth.conftest import AuthApi

TTL_SECONDS = 1


@pytest.fixture(scope="module")
def auth_env(jwt_env: dict[str, str], auth_db_url: str) -> dict[str, str]:
    return {
        **jwt_env,
        "AUTH_DB_URL": auth_db_url,
        "ACCESS_TOKEN_TTL": str(TTL_SECONDS),
        "REFRESH_TOKEN_TTL": str(TTL_SECONDS),
    }


def test_expired_access_and_refresh_tokens_are_refused(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    pair = auth_api.tokens(username)
    assert pair["expires_in"] == TTL_SECONDS
    assert auth_api.me(pair["access_token"]).status_code == 200
    # JWT times are whole seconds: past iat + 1 s for sure once 2 s have gone by.
    time.sleep(TTL_SECONDS + 1.1)
    me = auth_api.me(pair["access_token"])
    assert me.status_code == 401
    assert me.json()["code"] == "token_expired"
    assert 'error="invalid_token"' in me.headers["www-authenticate"]
    refreshed = auth_api.refresh(pair["refresh_token"])
    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "invalid_refresh_token"
