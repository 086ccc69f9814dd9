"""The gateway's pure rules: header filtering, replica order (frames: test_ws_tunnel_frames.py)."""

from __future__ import annotations

from gateway.headers import client_response_headers, end_to_end
from gateway.upstreams import ReplicaPool


def test_hop_by_hop_and_connection_named_headers_are_dropped() -> None:
    headers = [
        ("Connection", "close, X-Secret"),
        ("X-Secret", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Encoding", "gzip"),
    ]
    assert end_to_end(headers, frozenset()) == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Encoding", "gzip"),
    ]
    assert client_response_headers([("X-Request-ID", "upstream's"), ("ETag", "x")]) == [
        ("ETag", "x")
    ]


def test_round_robin_skips_a_failed_replica_but_still_tries_it_last() -> None:
    pool = ReplicaPool.from_urls("todo", ["http://a", "http://b", "http://c"])
    firsts = [pool.attempt_order()[0].url for _ in range(6)]
    assert firsts == ["http://a", "http://b", "http://c"] * 2

    pool.mark_failed(pool.replicas[1], "ConnectError")
    for _ in range(4):
        order = [r.url for r in pool.attempt_order()]
        assert order[-1] == "http://b"
        assert set(order[:2]) == {"http://a", "http://c"}
    assert pool.has_available()

    for replica in pool.replicas:
        pool.mark_failed(replica, "ConnectError")
    assert not pool.has_available()
    assert len(pool.attempt_order()) == 3  # all marked down: all still tried

    pool.mark_succeeded(pool.replicas[2])
    assert pool.attempt_order()[0].url == "http://c"
