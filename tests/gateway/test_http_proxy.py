"""HTTP through the gateway to a real upstream process: what arrives, what comes back."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import MAX_BODY, BasicStack
from tests.gateway.upstream_app import pattern_bytes


def upstream_headers(echo: dict[str, Any]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        headers.setdefault(name, []).append(value)
    return headers


def test_method_path_query_headers_and_body_arrive_unchanged(basic_stack: BasicStack) -> None:
    body = b'{"hello": "world"}'
    response = httpx.put(
        basic_stack.url + "/auth/some/deep%20path/x?b=2&a=1&a=%2F",
        content=body,
        headers={
            "X-Custom": "one",
            "Content-Type": "application/json",
            "Authorization": "Bearer t",
        },
    )
    assert response.status_code == 200
    echo = response.json()
    assert echo["name"] == "auth-1"
    assert echo["method"] == "PUT"
    assert echo["path"] == "/auth/some/deep%20path/x"
    assert echo["query"] == "b=2&a=1&a=%2F"
    assert echo["body_length"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    headers = upstream_headers(echo)
    assert headers["x-custom"] == ["one"]
    assert headers["authorization"] == ["Bearer t"]
    assert headers["content-type"] == ["application/json"]


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_goes_to_the_todo_upstream(basic_stack: BasicStack, method: str) -> None:
    response = httpx.request(method, basic_stack.url + "/ws_ep/items/5?x=1")
    assert response.status_code == 200
    assert response.json()["name"] == "todo-1"
    assert response.json()["method"] == method
    assert response.json()["path"] == "/ws_ep/items/5"


def test_head_is_forwarded(basic_stack: BasicStack) -> None:
    log = basic_stack.gateway.log_path
    logged_before = log.stat().st_size
    with httpx.Client() as client:
        response = client.head(basic_stack.url + "/auth/anything")
        # On the same connection: answered once the HEAD's handler has quite finished.
        assert client.get(basic_stack.url + "/healthz").status_code == 200
    assert response.status_code == 200
    assert response.content == b""
    with log.open("rb") as lines:
        lines.seek(logged_before)
        assert b"Traceback" not in lines.read()


def test_hop_by_hop_headers_are_dropped_and_forwarding_headers_added(
    basic_stack: BasicStack,
) -> None:
    response = httpx.get(
        basic_stack.url + "/auth/headers",
        headers={
            "Connection": "keep-alive, X-Per-Hop",
            "X-Per-Hop": "secret-of-this-hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "Upgrade": "h2c",
            "X-Forwarded-For": "203.0.113.9",
            "X-End-To-End": "kept",
        },
    )
    headers = upstream_headers(response.json())
    for dropped in ("x-per-hop", "keep-alive", "te", "proxy-authorization", "upgrade"):
        assert dropped not in headers, dropped
    assert headers["x-end-to-end"] == ["kept"]
    # The upstream gets its own Host; the client's goes on as X-Forwarded-Host.
    assert headers["host"] == [basic_stack.auth.url.removeprefix("http://")]
    assert headers["x-forwarded-host"] == [basic_stack.url.removeprefix("http://")]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]
    # One request id across the gateway's and the upstream's logs.
    assert headers["x-request-id"] == [response.headers["x-request-id"]]


def test_the_upstream_sees_the_clients_address(basic_stack: BasicStack) -> None:
    # The client connects from 127.0.0.2, the gateway from 127.0.0.1: with PROXIES_COUNT=1
    # the upstream's remote_addr is the client's, its TCP peer the gateway's.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as client:
        echo = client.get(basic_stack.url + "/auth/whoami").json()
    assert echo["remote_addr"] == "127.0.0.2"
    assert echo["peer"] == "127.0.0.1"
    assert upstream_headers(echo)["x-forwarded-for"] == ["127.0.0.2"]


def test_no_headers_are_invented(basic_stack: BasicStack) -> None:
    # httpx's client defaults (Accept-Encoding, User-Agent...) must not leak upstream.
    with httpx.Client() as client:
        request = client.build_request("GET", basic_stack.url + "/auth/plain")
        for name in ("accept", "accept-encoding", "user-agent"):
            del request.headers[name]
        echo = client.send(request).json()
    headers = upstream_headers(echo)
    for name in ("accept", "accept-encoding", "user-agent"):
        assert name not in headers, name


def test_response_headers_come_back_including_repeated_ones(basic_stack: BasicStack) -> None:
    response = httpx.get(basic_stack.url + "/auth/cookies")
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["x-upstream"] == "auth-1"


def test_compressed_bodies_pass_through_byte_for_byte(basic_stack: BasicStack) -> None:
    with httpx.Client() as client:
        with client.stream(
            "GET", basic_stack.url + "/ws_ep/gzip", headers={"Accept-Encoding": "gzip"}
        ) as response:
            wire = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(wire)
    assert gzip.decompress(wire).startswith(b'{"compressed": true')


AUTH_MAX_BODY = 64 * 1024


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    data = pattern_bytes(total)
    for start in range(0, total, size):
        yield data[start : start + size]


def test_a_large_body_streams_both_ways(basic_stack: BasicStack) -> None:
    size = 5 * 1024 * 1024
    upload = httpx.post(basic_stack.url + "/ws_ep/upload", content=_chunks(size), timeout=30)
    assert upload.status_code == 200
    echo = upload.json()
    assert echo["body_length"] == size
    assert echo["body_sha256"] == hashlib.sha256(pattern_bytes(size)).hexdigest()
    assert upstream_headers(echo)["transfer-encoding"] == ["chunked"]

    download = httpx.get(basic_stack.url + f"/ws_ep/stream?size={size}", timeout=30)
    assert download.status_code == 200
    assert len(download.content) == size
    assert download.content == pattern_bytes(size)


def test_an_upstream_breaking_off_mid_body_is_not_passed_off_as_complete(
    basic_stack: BasicStack,
) -> None:
    url = basic_stack.url + "/ws_ep/stream?size=1048576&break_after=131072"
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("GET", url, timeout=10) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
    assert 0 < len(received) < 1048576
    # The gateway itself is fine.
    assert httpx.get(basic_stack.url + "/auth/after").status_code == 200


def test_a_body_over_the_limit_gets_413(basic_stack: BasicStack) -> None:
    too_big = MAX_BODY + 1
    url = basic_stack.url + "/ws_ep/upload"
    declared = httpx.post(url, content=b"x" * too_big, timeout=30)
    assert declared.status_code == 413
    assert declared.json() == {
        "detail": f"The request body is over {MAX_BODY} bytes.",
        "code": "payload_too_large",
    }

    streamed = httpx.post(url, content=_chunks(too_big), timeout=30)
    assert streamed.status_code == 413
    assert streamed.json()["code"] == "payload_too_large"


def test_auth_bodies_are_limited_to_the_auth_services_64_kib(basic_stack: BasicStack) -> None:
    # The test upstream takes any size: the 413 comes from the gateway itself.
    url = basic_stack.url + "/auth/register"
    at_limit = httpx.post(url, content=b"x" * AUTH_MAX_BODY, timeout=30)
    assert at_limit.status_code == 200
    assert at_limit.json()["body_length"] == AUTH_MAX_BODY
    for body in (b"x" * (AUTH_MAX_BODY + 1), _chunks(150_000, size=16_384)):
        over = httpx.post(url, content=body, timeout=30)
        assert over.status_code == 413
        assert over.json() == {
            "detail": f"The request body is over {AUTH_MAX_BODY} bytes.",
            "code": "payload_too_large",
        }


def test_a_slow_upstream_gets_504(basic_stack: BasicStack) -> None:
    response = httpx.get(basic_stack.url + "/auth/slow?delay=3", timeout=10)
    assert response.status_code == 504
    assert response.json() == {
        "detail": "The upstream service did not answer in time.",
        "code": "gateway_timeout",
    }


def test_gateway_health_is_its_own_and_upstream_health_is_proxied(
    basic_stack: BasicStack,
) -> None:
    assert httpx.get(basic_stack.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(basic_stack.url + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["upstreams"]["auth"] == [
        {"url": basic_stack.auth.url, "status": "up", "error": None}
    ]
    assert [r["status"] for r in body["upstreams"]["todo"]] == ["up"]
    # Under a prefix, /healthz is the upstream's.
    assert httpx.get(basic_stack.url + "/auth/healthz").json()["name"] == "auth-1"


def test_the_web_client_is_served_at_the_root(basic_stack: BasicStack) -> None:
    page = httpx.get(basic_stack.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "<html" in page.text.lower()
    again = httpx.get(
        basic_stack.url + "/", headers={"If-Modified-Since": page.headers["last-modified"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/nope", "/auth", "/static/../../etc/passwd", "/ws_ep"])
def test_unknown_paths_get_404_json(basic_stack: BasicStack, path: str) -> None:
    response = httpx.get(basic_stack.url + path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
