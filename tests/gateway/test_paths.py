"""Odd request paths, sent byte for byte over a socket (httpx would resolve `..` first)."""

from __future__ import annotations

import pytest

from gateway.paths import path_under, resolve_dot_segments
from tests.gateway import rawhttp
from tests.gateway.conftest import BasicStack

ESCAPES = [
    b"/auth/../readyz",
    b"/auth/../healthz",
    b"/ws_ep/../readyz",
    b"/auth/%2e%2e/readyz",
    b"/auth/%2E%2E/readyz",
    b"/auth/.%2e/readyz",
    b"/auth/%2e./readyz",
    b"/ws_ep/%2E%2e/readyz",
    b"/auth/x/../../readyz",
    b"/auth/x/%2e%2e/%2e%2e/ws_ep/ws",
    b"/auth/./../readyz",
    b"/auth/%2e/%2e%2e/readyz",
    b"/ws_ep/..",
    b"/auth/..?x=1",
]


@pytest.mark.parametrize("target", ESCAPES, ids=lambda t: t.decode())
def test_a_path_leaving_its_prefix_is_404_and_reaches_no_upstream(
    basic_stack: BasicStack, target: bytes
) -> None:
    response = rawhttp.request(basic_stack.gateway.port, target)
    assert response.status == 404
    # The gateway's own answer: an upstream's echo would carry its name.
    assert response.json() == {"detail": response.json()["detail"], "code": "not_found"}


@pytest.mark.parametrize("method", [b"POST", b"DELETE"])
def test_any_method_is_refused_alike(basic_stack: BasicStack, method: bytes) -> None:
    response = rawhttp.request(
        basic_stack.gateway.port, b"/auth/%2e%2e/readyz", method, [b"Content-Length: 0"]
    )
    assert response.status == 404


def test_a_websocket_upgrade_leaving_its_prefix_is_404(basic_stack: BasicStack) -> None:
    upgrade = [
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
    ]
    response = rawhttp.request(basic_stack.gateway.port, b"/ws_ep/%2e%2e/readyz", headers=upgrade)
    assert response.status == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("target", "upstream_path"),
    [
        (b"/auth/x/../y", "/auth/y"),
        (b"/auth/x/%2e%2e/y", "/auth/y"),
        (b"/auth/./me", "/auth/me"),
        (b"/ws_ep/a/%2E/b", "/ws_ep/a/b"),
        (b"/auth/a%2eb/c", "/auth/a%2eb/c"),  # not a dot segment: forwarded as sent
        (b"/auth/..%2fx", "/auth/..%2fx"),  # one segment `..%2fx`, not `..`
    ],
)
def test_dot_segments_inside_the_prefix_are_resolved_before_forwarding(
    basic_stack: BasicStack, target: bytes, upstream_path: str
) -> None:
    response = rawhttp.request(basic_stack.gateway.port, target)
    assert response.status == 200
    assert response.json()["path"] == upstream_path


@pytest.mark.parametrize(
    "target",
    [
        b"/index.html%00.js",
        b"/%00",
        b"/app.js%00",
        b"/index.html/",
        b"/%2e%2e/%2e%2e/etc/passwd",
        b"/..%2f..%2fetc/passwd",
        b"/static/../../etc/passwd",
        b"/a%ff",
        b"/x%2",
        b"/%01%7f",
        b"/" + b"a" * 3000,
        b"/.hidden",
    ],
    ids=repr,
)
def test_odd_static_paths_are_404_never_500(basic_stack: BasicStack, target: bytes) -> None:
    log = basic_stack.gateway.log_path
    logged_before = log.stat().st_size
    response = rawhttp.request(basic_stack.gateway.port, target)
    assert response.status == 404
    assert response.json()["code"] == "not_found"
    with log.open("rb") as lines:
        lines.seek(logged_before)
        assert b"Traceback" not in lines.read()


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("/auth/login", "/auth/login"),
        ("/auth/../readyz", "/readyz"),
        ("/auth/x/..", "/auth/"),
        ("/auth/x/.", "/auth/x/"),
        ("/auth/%2E%2e/x", "/x"),
        ("/a/b/../../../c", "/c"),
        ("/auth//../x", "/auth/x"),
        ("/auth/...", "/auth/..."),
    ],
)
def test_resolve_dot_segments(path: str, resolved: str) -> None:
    assert resolve_dot_segments(path) == resolved


def test_path_under() -> None:
    assert path_under("/auth", "/auth/x/../login") == "/auth/login"
    assert path_under("/auth", "/auth/../auth/login") == "/auth/login"
    assert path_under("/auth", "/auth/..") is None
    assert path_under("/auth", "/auth/%2e%2e/authx/y") is None
