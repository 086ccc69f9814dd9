"""`POST /auth/register`: success, the username rules, duplicates, malformed bodies."""

from __future__ import annotations

import secrets
from datetime import datetime

import pytest

from tests.auth.conftest import PASSWORD, AuthApi


def test_register_returns_the_public_user(auth_api: AuthApi) -> None:
    username = auth_api.new_username("Mixed.Case_")
    response = auth_api.register(username)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "created_at"}
    assert body["username"] == username  # kept as typed
    assert isinstance(body["id"], int)
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0


def test_duplicate_username_is_409_in_any_letter_case(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    for duplicate in (username, username.upper()):
        response = auth_api.register(duplicate, "another password")
        assert response.status_code == 409
        assert response.json() == {
            "detail": "This username is already taken.",
            "code": "username_taken",
        }


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (f"z{secrets.token_hex(1)}", PASSWORD),
        ("a" * 22 + secrets.token_hex(5), PASSWORD),
        (f"A.b-C_9{secrets.token_hex(4)}", PASSWORD),
        (f"p{secrets.token_hex(5)}", "12345678"),
        (f"q{secrets.token_hex(5)}", "9" * 128),
    ],
    ids=["username-3", "username-32", "every-kind-of-char", "password-8", "password-128"],
)
def test_boundary_values_are_accepted(auth_api: AuthApi, username: str, password: str) -> None:
    response = auth_api.register(username, password)
    assert response.status_code == 201, response.text
    assert response.json()["username"] == username
    assert auth_api.login(username, password).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"username": "ab", "password": PASSWORD}, "username", "at least 3"),
        ({"username": "a" * 33, "password": PASSWORD}, "username", "at most 32"),
        ({"username": "has space", "password": PASSWORD}, "username", "only letters"),
        ({"username": "slash/name", "password": PASSWORD}, "username", "only letters"),
        ({"username": "ünïcode", "password": PASSWORD}, "username", "only letters"),
        ({"username": 12345, "password": PASSWORD}, "username", "must be a string"),
        ({"username": "validname", "password": "short7!"}, "password", "at least 8"),
        ({"username": "validname", "password": "p" * 129}, "password", "at most 128"),
        ({"password": PASSWORD}, "username", "is required"),
        ({"username": "validname"}, "password", "is required"),
        ({"username": "validname", "password": PASSWORD, "admin": True}, "admin", "not an"),
        (["validname", PASSWORD], "body", "JSON object"),
    ],
    ids=[
        "username-short",
        "username-long",
        "username-space",
        "username-slash",
        "username-non-ascii",
        "username-not-string",
        "password-short",
        "password-long",
        "username-missing",
        "password-missing",
        "unknown-field",
        "not-an-object",
    ],
)
def test_invalid_registration_is_422_naming_the_field(
    auth_api: AuthApi, body: object, field: str, message: str
) -> None:
    response = auth_api.http.post("/auth/register", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert isinstance(payload["detail"], str)
    assert any(e["field"] == field and message in e["message"] for e in payload["errors"]), payload


def test_every_problem_is_listed(auth_api: AuthApi) -> None:
    response = auth_api.http.post("/auth/register", json={"username": "x"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"username", "password"}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"username": "abc", "password": ', "application/json"),
        (b"username=abc&password=secret123", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"[" * 50_000, "application/json"),
    ],
    ids=["truncated-json", "form-body", "empty", "not-utf8", "deeply-nested"],
)
def test_non_json_body_is_422_in_the_json_shape(
    auth_api: AuthApi, content: bytes, content_type: str
) -> None:
    response = auth_api.http.post(
        "/auth/register", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "body"
    assert "Traceback" not in response.text


def test_oversized_body_is_413_json(auth_api: AuthApi) -> None:
    body = {"username": "big", "password": "x" * 100_000}
    response = auth_api.http.post("/auth/register", json=body)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
