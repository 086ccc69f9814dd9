"""Which headers cross the gateway, in each direction.

Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection, not the message:
they are dropped both ways, with any header the `Connection` header names. `Host` is set
by the HTTP client for the upstream; the browser's host goes on as `X-Forwarded-Host`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sanic import Request

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

# Never forwarded upstream: set by the HTTP client or by us below (`expect`: the
# gateway itself answers 100-continue when it starts reading the body).
_REQUEST_ONLY_HERE = frozenset(
    {"host", "expect", "x-forwarded-proto", "x-forwarded-host", "x-request-id"}
)

# Set by Sanic for the client's connection (`content-length` is kept: the body is
# relayed byte for byte, so the upstream's length stays true).
_RESPONSE_SET_HERE = frozenset({"x-request-id", "alt-svc"})


# A WebSocket handshake is an HTTP request: report its scheme as http/https.
_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def _named_by_connection(headers: Iterable[tuple[str, str]]) -> set[str]:
    names: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            names.update(token.strip().lower() for token in value.split(","))
    return names


def end_to_end(
    headers: Iterable[tuple[str, str]], also_drop: frozenset[str]
) -> list[tuple[str, str]]:
    """`headers` without hop-by-hop ones, those `Connection` names, and `also_drop`."""
    items = list(headers)
    drop = HOP_BY_HOP | also_drop | _named_by_connection(items)
    return [(name, value) for name, value in items if name.lower() not in drop]


def forwarded_for(request: Request) -> str:
    """`X-Forwarded-For` with the client's address appended (kept as a chain)."""
    previous = ", ".join(request.headers.getall("x-forwarded-for", []))
    client = request.ip or "unknown"
    return f"{previous}, {client}" if previous else client


def forwarding_headers(request: Request) -> list[tuple[str, str]]:
    """The `X-Forwarded-*` and `X-Request-ID` headers the upstream gets."""
    return [
        ("X-Forwarded-For", forwarded_for(request)),
        ("X-Forwarded-Proto", _HTTP_SCHEME.get(request.scheme, request.scheme)),
        ("X-Forwarded-Host", request.headers.get("host", "")),
        # The upstream's request id (Sanic reads this header) equals ours: one id per
        # request across the gateway's and the service's log lines.
        ("X-Request-ID", str(request.id)),
    ]


def upstream_request_headers(request: Request) -> list[tuple[str, str]]:
    """Everything the upstream gets for an HTTP request."""
    headers = end_to_end(request.headers.items(), _REQUEST_ONLY_HERE | {"x-forwarded-for"})
    return headers + forwarding_headers(request)


def client_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Everything the client gets of the upstream's response headers.

    A service's own `Access-Control-*` headers are dropped: through the gateway, the
    gateway's `CORS_ORIGINS` alone decides what a page of another origin may read.
    """
    kept = end_to_end(headers, _RESPONSE_SET_HERE)
    return [(name, value) for name, value in kept if not _is_cors_header(name)]


def _is_cors_header(name: str) -> bool:
    return name.lower().startswith("access-control-")
