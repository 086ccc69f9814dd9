"""`POST /auth/login`: both encodings, the token pair, identical failures, throttling."""

from __future__ import annotations

import statistics
import time

import httpx
import jwt
import pytest

from tests.auth.conftest import LOGIN_FAILURE_WINDOW, LOGIN_MAX_FAILURES, PASSWORD, AuthApi


@pytest.mark.parametrize("form", [False, True], ids=["json", "oauth2-form"])
def test_login_answers_a_token_pair(auth_api: AuthApi, jwt_secret: str, form: bool) -> None:
    username = auth_api.new_user()
    response = auth_api.login(username, form=form)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert len(body["refresh_token"]) >= 43  # token_urlsafe(32)

    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "HS256"
    claims = jwt.decode(body["access_token"], jwt_secret, algorithms=["HS256"], audience="todo-api")
    assert set(claims) == {"sub", "username", "iss", "aud", "iat", "exp", "jti"}
    assert claims["iss"] == "todo-auth"
    assert claims["username"] == username
    assert claims["exp"] - claims["iat"] == 900
    me = auth_api.me(body["access_token"])
    assert me.status_code == 200
    assert str(me.json()["id"]) == claims["sub"]


def test_form_login_without_grant_type_and_with_extra_oauth2_fields(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    response = auth_api.http.post(
        "/auth/login",
        data={"username": username, "password": PASSWORD, "scope": "", "client_id": "web"},
    )
    assert response.status_code == 200, response.text
    auth_api.remember(response.json()["access_token"], response.json()["refresh_token"])


def test_form_login_with_another_grant_type_is_422(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    response = auth_api.http.post(
        "/auth/login",
        data={"grant_type": "client_credentials", "username": username, "password": PASSWORD},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "grant_type"


def test_username_is_case_insensitive_at_login(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    response = auth_api.login(username.upper())
    assert response.status_code == 200
    me = auth_api.me(response.json()["access_token"]).json()
    assert me["username"] == username


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b'{"username": "x"}', "application/json", "password"),
        (b'{"password": "x"}', "application/json", "username"),
        (b"{nope", "application/json", "body"),
        (b"", "application/json", "body"),
        (b"password=xyzxyzxyz", "application/x-www-form-urlencoded", "username"),
        (b"username=someone", "application/x-www-form-urlencoded", "password"),
    ],
    ids=["json-no-password", "json-no-username", "bad-json", "empty", "form-no-user", "form-no-pw"],
)
def test_malformed_login_is_422(
    auth_api: AuthApi, content: bytes, content_type: str, field: str
) -> None:
    response = auth_api.http.post(
        "/auth/login", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in {e["field"] for e in body["errors"]}


def _timed_login(auth_api: AuthApi, username: str, password: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = auth_api.login(username, password)
    return response, time.perf_counter() - started


def test_wrong_password_and_unknown_user_look_the_same(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    wrong: list[float] = []
    unknown: list[float] = []
    bodies = set()
    # Stay under the throttle: at most LOGIN_MAX_FAILURES failures for the known user.
    for _ in range(LOGIN_MAX_FAILURES):
        response, seconds = _timed_login(auth_api, username, "wrong password!")
        assert response.status_code == 401
        bodies.add(response.content)
        wrong.append(seconds)
        response, seconds = _timed_login(auth_api, auth_api.new_username(), "wrong password!")
        assert response.status_code == 401
        bodies.add(response.content)
        unknown.append(seconds)
    assert len(bodies) == 1, bodies
    assert response.json() == {
        "detail": "Incorrect username or password.",
        "code": "invalid_credentials",
    }
    # Both really ran argon2 (a hash costs well over 10 ms), and neither path is far slower.
    wrong_median, unknown_median = statistics.median(wrong), statistics.median(unknown)
    assert wrong_median > 0.010 and unknown_median > 0.010, (wrong, unknown)
    assert max(wrong_median, unknown_median) < 5 * min(wrong_median, unknown_median)


def test_throttling_after_repeated_failures(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    for _ in range(LOGIN_MAX_FAILURES):
        assert auth_api.login(username, "not the password").status_code == 401
    # Now even the right password is refused until the window has passed.
    refused = auth_api.login(username, PASSWORD)
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "Too many failed logins; try again later.",
        "code": "too_many_attempts",
    }
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= LOGIN_FAILURE_WINDOW
    assert auth_api.login(username.upper(), PASSWORD).status_code == 429  # same budget

    # Another user from the same address is not affected.
    other = auth_api.new_user()
    assert auth_api.login(other).status_code == 200

    # After the window, the right password works again (poll, bounded).
    deadline = time.monotonic() + LOGIN_FAILURE_WINDOW + 5
    while (response := auth_api.login(username, PASSWORD)).status_code == 429:
        assert time.monotonic() < deadline, "still throttled after the window"
        time.sleep(0.2)
    assert response.status_code == 200


def test_success_clears_the_failures(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    for _ in range(LOGIN_MAX_FAILURES - 1):
        assert auth_api.login(username, "not the password").status_code == 401
    assert auth_api.login(username).status_code == 200
    for _ in range(LOGIN_MAX_FAILURES - 1):
        assert auth_api.login(username, "not the password").status_code == 401
    assert auth_api.login(username).status_code == 200


@pytest.mark.parametrize(
    "username",
    ["x" * 33, "0" * 256, "İ" * 32, "nul\x00byte", "tab\tname", "é-accent"],
    ids=["33-chars", "256-chars", "longer-when-lowercased", "nul", "control", "non-ascii"],
)
def test_a_name_that_could_never_be_registered_is_just_wrong(
    auth_api: AuthApi, username: str
) -> None:
    # Found by the schemathesis suite: such names reached the query and answered 500
    # (Tortoise refuses a value longer than the column, PostgreSQL a NUL).
    response = auth_api.login(username, "wrong password!")
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_credentials"
    form = auth_api.http.post("/auth/login", data={"username": username, "password": "x"})
    assert form.status_code == 401, form.text


def _multipart(fields: dict[str, str], part_header: str = "") -> bytes:
    parts = [
        f'--XyZ\r\nContent-Disposition: form-data; name="{name}"\r\n{part_header}\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + "--XyZ--\r\n").encode()


def test_multipart_form_login(auth_api: AuthApi) -> None:
    username = auth_api.new_user()
    response = auth_api.http.post(
        "/auth/login",
        content=_multipart({"username": username, "password": PASSWORD}),
        headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == 200, response.text
    auth_api.remember(response.json()["access_token"], response.json()["refresh_token"])


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (_multipart({"username": "a", "password": "b"}), "multipart/form-data"),
        (
            _multipart(
                {"username": "a", "password": "b"}, "Content-Type: text/plain; charset=nope\r\n"
            ),
            "multipart/form-data; boundary=XyZ",
        ),
        (b"username=\xff\xfe&password=x", "application/x-www-form-urlencoded"),
    ],
    ids=["multipart-without-boundary", "unknown-charset", "not-utf-8"],
)
def test_an_unreadable_form_is_422_and_logs_no_error(
    auth_api: AuthApi, content: bytes, content_type: str
) -> None:
    # Found by the schemathesis suite: Sanic's own form parsing logged a traceback at ERROR
    # for each such body (a cheap way to flood the logs), then went on with an empty form.
    response = auth_api.http.post(
        "/auth/login", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "body", "message": "is not a readable form"}]
    request_id = response.headers["x-request-id"]
    log = auth_api.server.log_path.read_text(errors="replace")
    errors = [line for line in log.splitlines() if request_id in line and '"level":"ERROR"' in line]
    assert not errors, errors
