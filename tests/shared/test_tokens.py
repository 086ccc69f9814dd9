"""The one JWT verifier both services use: pinned algorithm, required claims."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from shared.settings import JwtSettings
from shared.tokens import AccessTokenCodec, ExpiredToken, InvalidToken

SECRET = "k" * 64


@pytest.fixture
def codec() -> AccessTokenCodec:
    return AccessTokenCodec(JwtSettings(jwt_secret=SECRET))  # type: ignore[arg-type]


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "7",
        "username": "ann",
        "iss": "todo-auth",
        "aud": "todo-api",
        "iat": now,
        "exp": now + 60,
        "jti": "j1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_issue_then_verify_round_trip(codec: AccessTokenCodec) -> None:
    issued = codec.issue(7, "ann", 900)
    assert issued.expires_in == 900
    verified = codec.verify(issued.token)
    assert (verified.user_id, verified.username) == ("7", "ann")
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) == {"sub", "username", "iss", "aud", "iat", "exp", "jti"}
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


# Built when the test runs, not at collection: they must not have expired meanwhile.
@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "garbage", id="garbage"),
        pytest.param(lambda: jwt.encode(claims(), "w" * 64, algorithm="HS256"), id="wrong-key"),
        pytest.param(lambda: jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(lambda: jwt.encode(claims(), SECRET, algorithm="HS512"), id="other-alg"),
        pytest.param(
            lambda: jwt.encode(claims(aud="other"), SECRET, algorithm="HS256"), id="wrong-aud"
        ),
        pytest.param(
            lambda: jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), id="wrong-iss"
        ),
        pytest.param(lambda: jwt.encode(claims(sub=None), SECRET, algorithm="HS256"), id="no-sub"),
        pytest.param(lambda: jwt.encode(claims(aud=None), SECRET, algorithm="HS256"), id="no-aud"),
        pytest.param(lambda: jwt.encode(claims(iss=None), SECRET, algorithm="HS256"), id="no-iss"),
        pytest.param(lambda: jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), id="no-exp"),
    ],
)
def test_bad_tokens_are_refused(codec: AccessTokenCodec, make_token: Callable[[], str]) -> None:
    with pytest.raises(InvalidToken) as err:
        codec.verify(make_token())
    assert not isinstance(err.value, ExpiredToken)


def test_expired_token_is_told_apart(codec: AccessTokenCodec) -> None:
    past = int(time.time()) - 10
    token = jwt.encode(claims(iat=past - 60, exp=past), SECRET, algorithm="HS256")
    with pytest.raises(ExpiredToken):
        codec.verify(token)
