"""HTTP forwarding: the client's request to one replica, its response streamed back.

    ApiError
     ├── BadGateway        502 bad_gateway: no replica could be reached, or it broke off
     ├── GatewayTimeout    504 gateway_timeout: the replica did not answer in time
     └── BodyTooLarge      413 payload_too_large: the body is over GATEWAY_MAX_BODY

Only a failure to *connect* moves a request on to the next replica: the request cannot
have reached that upstream, so even a POST is safe to send elsewhere. Once a request has
been sent, an error is answered as is, never replayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
from sanic import Request
from sanic.compat import Header

from gateway.headers import client_response_headers, upstream_request_headers
from gateway.upstreams import Replica, ReplicaPool
from shared.errors import ApiError
from shared.logs import redact

logger = logging.getLogger("gateway.http")


class BadGateway(ApiError):
    """The upstream service is unreachable."""

    status_code = 502
    code = "bad_gateway"


class GatewayTimeout(ApiError):
    """The upstream service did not answer in time."""

    status_code = 504
    code = "gateway_timeout"


class BodyTooLarge(ApiError):
    """The request body is too large."""

    status_code = 413
    code = "payload_too_large"


def _has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


def _declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _stream_body(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body chunk by chunk as it arrives, cut off past `limit` bytes."""
    received = 0
    while (chunk := await request.stream.read()) is not None:  # type: ignore[union-attr]
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(f"The request body is over {limit} bytes.")
        yield chunk


def _upstream_url(replica: Replica, path: str, request: Request) -> str:
    # The path (dot segments resolved, still percent-encoded) and the raw query string.
    query = request.query_string
    return replica.url + path + (f"?{query}" if query else "")


async def _open_upstream_response(
    request: Request, path: str, pool: ReplicaPool, client: httpx.AsyncClient, body_limit: int
) -> tuple[Replica, httpx.Response]:
    """Send the request to the first replica that accepts a connection."""
    headers = upstream_request_headers(request)
    body = _stream_body(request, body_limit) if _has_body(request) else None
    for replica in pool.attempt_order():
        upstream_request = client.build_request(
            request.method, _upstream_url(replica, path, request), headers=headers, content=body
        )
        try:
            return replica, await client.send(upstream_request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Not connected, nothing sent (the body generator was not started): next one.
            pool.mark_failed(replica, type(exc).__name__)
        except httpx.TimeoutException as exc:
            logger.warning("%s timed out: %s", redact(replica.url), type(exc).__name__)
            raise GatewayTimeout() from None
        except httpx.HTTPError as exc:
            logger.warning("%s failed: %s", redact(replica.url), type(exc).__name__)
            raise BadGateway() from None
    raise BadGateway(f"No replica of the {pool.service} service is reachable.")


async def proxy_http(
    request: Request, path: str, pool: ReplicaPool, client: httpx.AsyncClient, body_limit: int
) -> None:
    """Forward `request` to `path` on a replica of `pool`; stream the answer to the client.

    `body_limit` must not be above the upstream's own: an upstream that refuses a body
    answers 413 and closes while the body is still coming, and the reset that follows
    loses its answer (the client would get a 502). The gateway refuses it first.
    """
    declared = _declared_length(request)
    if declared is not None and declared > body_limit:
        raise BodyTooLarge(f"The request body is over {body_limit} bytes.")
    started = time.monotonic()
    replica, upstream = await _open_upstream_response(request, path, pool, client, body_limit)
    pool.mark_succeeded(replica)
    try:
        response = await request.respond(
            status=upstream.status_code,
            headers=Header(client_response_headers(upstream.headers.multi_items())),
        )
        # aiter_raw: the bytes exactly as the upstream sent them. httpx would otherwise
        # decompress gzip/br bodies, and the kept Content-Encoding and Content-Length
        # headers would then lie. The client asked for that encoding (its Accept-Encoding
        # went upstream unchanged), so it can decode it itself.
        # A HEAD's headers go out when Sanic ends the response after this handler: any
        # send here, even an empty eof(), would make Sanic's own end fail (TypeError).
        if request.method != "HEAD":
            async for chunk in upstream.aiter_raw():
                await response.send(chunk)
            await response.eof()
    except httpx.HTTPError as exc:
        # The status line is already out: all we can do is cut the connection, so the
        # client sees a truncated body rather than a complete-looking one.
        logger.warning("%s broke off mid-response: %s", redact(replica.url), type(exc).__name__)
        if request.transport is not None:
            request.transport.close()
    finally:
        await upstream.aclose()
    logger.debug(
        "%s %s -> %s %s in %.3fs",
        request.method,
        redact(request.path),
        redact(replica.url),
        upstream.status_code,
        time.monotonic() - started,
    )
