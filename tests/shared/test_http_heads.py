"""Malformed request heads answer 400 and close the connection; odd bytes never give 500.

Sanic's parser alone reads `Content-Length : 5` as a header named `content-length ` (so the
body is parsed as the next request) and lets NUL, control bytes and obs-fold lines through:
through the gateway that made 502s and 500s, with the connection left open.
"""

from __future__ import annotations

import json

import pytest

from shared.http_head import is_well_formed_head
from tests.shared.conftest import SERVICES, service_of
from tests.shared.rawhttp import exchange
from tests.stack import LocalStack

MALFORMED = {
    "space before the colon": b"Content-Length : 5\r\n",
    "space before the colon, transfer-encoding": b"Transfer-Encoding : chunked\r\n",
    "NUL in a value": b"X-Note: a\x00b\r\n",
    "control byte in a value": b"X-Note: a\x01b\r\n",
    "DEL in a value": b"X-Note: a\x7fb\r\n",
    "bare CR in a value": b"X-Note: a\rb\r\n",
    "bare LF in a value": b"X-Note: a\nb\r\n",
    "obs-fold with a space": b"X-Note: a\r\n  folded: b\r\n",
    "obs-fold with a tab": b"X-Note: a\r\n\tfolded: b\r\n",
    "obs-fold without a colon": b"X-Note: a\r\n folded\r\n",
    "space inside a name": b"X Note: a\r\n",
    "empty name": b": a\r\n",
    "no colon": b"X-Note\r\n",
    "NUL in a name": b"X-No\x00te: a\r\n",
    "non-ASCII value": "X-Note: café\r\n".encode(),
}


def request_with(extra_header_lines: bytes, path: bytes = b"/healthz", body: bytes = b"") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: localhost\r\n" + extra_header_lines + b"\r\n" + body
    )


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_head_gets_400_and_the_connection_closed(
    stack: LocalStack, service: str, case: str
) -> None:
    # A well-formed request follows in the same packet: it must never be answered.
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    path = b"/auth/login" if service == "gateway" else b"/healthz"
    reply = exchange(
        service_of(stack, service).port, request_with(MALFORMED[case], path, b"hello" + smuggled)
    )
    assert reply.status == 400, reply.data
    assert reply.closed, "the connection was left open"
    body = reply.data.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body)["code"] == "bad_request"
    assert reply.data.count(b"HTTP/1.1 ") == 1, "the smuggled request was answered"


@pytest.mark.parametrize(
    "path", [b"/auth/me", b"/ws_ep/healthz", b"/index.html", b"/ws_ep/ws"], ids=str
)
@pytest.mark.parametrize("where", ["name", "value"])
def test_no_byte_in_a_header_gives_a_server_error(
    stack: LocalStack, path: bytes, where: str
) -> None:
    """Every byte value, in a header name and in a value, on each kind of gateway route
    (auth proxy, todo proxy, static page, WebSocket handshake): never a 5xx."""
    upgrade = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    upgrade += b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    for byte in range(256):
        odd = bytes([byte])
        header = b"X-O" + odd + b"dd: 1\r\n" if where == "name" else b"Origin: a" + odd + b"b\r\n"
        extra = upgrade if path == b"/ws_ep/ws" else b"Connection: close\r\n"
        request = b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + header + b"\r\n"
        reply = exchange(stack.gateway.port, request, quiet=2.0)
        assert reply.status is not None, (odd, reply.data)
        assert reply.status < 500, (odd, reply.data)
        if not is_well_formed_head(request[: request.index(b"\r\n\r\n")]):
            assert (reply.status, reply.closed) == (400, True), (odd, reply.data)
    assert "Traceback" not in stack.gateway.logs()


@pytest.mark.parametrize(
    ("head", "well_formed"),
    [
        (b"GET / HTTP/1.1", True),
        (b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\ta\tb", True),
        (b"GET / HTTP/1.1\r\nHost : x", False),
        (b"GET / HTTP/1.1\r\n Host: x", False),
        (b"GET /a\x00b HTTP/1.1\r\nHost: x", False),
        (b"GET  / HTTP/1.1", False),
        (b"GET / HTTP/1.1\r\n", False),
        (b"G(T / HTTP/1.1", False),
    ],
)
def test_is_well_formed_head(head: bytes, well_formed: bool) -> None:
    assert is_well_formed_head(head) is well_formed
