"""A small upstream for the gateway tests, run as a real process.

`python -m tests.gateway.upstream_app --host 127.0.0.1 --port P` (what `ServiceProcess`
runs). `UPSTREAM_NAME` names it in every answer, so a test can tell replicas apart.

| path                      | what                                                       |
|---------------------------|------------------------------------------------------------|
| any path, any method      | JSON echo: method, path, query, headers, body size + hash  |
| `/<prefix>/stream?size=N` | N bytes of a known pattern, streamed in 64 KiB chunks      |
|   `&break_after=K`        | ...but the connection is cut after K bytes                 |
| `/<prefix>/gzip`          | a gzip-encoded JSON body with `Content-Encoding: gzip`     |
| `/<prefix>/slow?delay=S`  | answers after S seconds                                    |
| `/<prefix>/cookies`       | two `Set-Cookie` headers and a custom one                  |
| `/ws_ep/ws`               | WebSocket: a hello, then echoes text and binary frames;    |
|                           | `?close=C&reason=R` closes at once with C; the text        |
|                           | `close C R` closes with C; frames over UPSTREAM_WS_MAX get |
|                           | 1009 (64 KiB by default, like the todo service)            |
| `/ws_ep/flood?size=N`     | WebSocket: text messages of N bytes, sent as fast as the   |
|   `&count=K&interval=S`   | connection takes them (forever, or K of them, then close   |
|                           | 1000), or one every S seconds                              |
| `/ws_ep/deaf?seconds=S`   | WebSocket that reads nothing the client sends, and closes  |
|                           | after S seconds (an hour by default)                       |
| `/<prefix>/refuse?status=S` | answers S (a WebSocket upgrade too) with a JSON body     |
| `/readyz`                 | 200, or 503 after `POST /_control/ready?value=0`           |
| `/_control/closes`        | the close codes and reasons received from clients          |
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import os

from sanic import Request, Sanic, Websocket
from sanic.response import HTTPResponse, json, raw

NAME = os.environ.get("UPSTREAM_NAME", "upstream")
PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern_bytes(size: int) -> bytes:
    """The bytes `/stream?size=N` sends, for a test to compare with."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def create_app() -> Sanic:
    app = Sanic("upstream_" + NAME.replace("-", "_"))
    app.config.PROXIES_COUNT = 1  # behind the gateway, like the real services
    app.config.WEBSOCKET_MAX_SIZE = int(os.environ.get("UPSTREAM_WS_MAX", "65536"))
    app.config.AUTO_EXTEND = False
    app.ctx.ready = True
    app.ctx.closes = []

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok", "name": NAME})

    @app.get("/readyz")
    async def readyz(request: Request) -> HTTPResponse:
        return json({"name": NAME}, status=200 if app.ctx.ready else 503)

    @app.post("/_control/ready")
    async def set_ready(request: Request) -> HTTPResponse:
        app.ctx.ready = request.args.get("value", "1") == "1"
        return json({"ready": app.ctx.ready})

    @app.get("/_control/closes")
    async def closes(request: Request) -> HTTPResponse:
        return json(app.ctx.closes)

    @app.get("/<prefix>/stream")
    async def stream(request: Request, prefix: str) -> None:
        size = int(request.args.get("size", "0"))
        break_after = int(request.args.get("break_after", str(size + 1)))
        response = await request.respond(content_type="application/octet-stream")
        data = pattern_bytes(size)
        for start in range(0, size, len(PATTERN)):
            if start >= break_after:
                request.transport.close()  # the upstream dies mid-body
                return
            await response.send(data[start : start + len(PATTERN)])
        await response.eof()

    @app.get("/<prefix>/gzip")
    async def gzipped(request: Request, prefix: str) -> HTTPResponse:
        body = gzip.compress(b'{"compressed": true, "padding": "' + b"x" * 5000 + b'"}')
        return raw(body, content_type="application/json", headers={"content-encoding": "gzip"})

    @app.get("/<prefix>/slow")
    async def slow(request: Request, prefix: str) -> HTTPResponse:
        await asyncio.sleep(float(request.args.get("delay", "1")))
        return json({"name": NAME, "slow": True})

    @app.get("/<prefix>/cookies")
    async def cookies(request: Request, prefix: str) -> HTTPResponse:
        response = json({"name": NAME})
        response.headers.add("set-cookie", "a=1; Path=/")
        response.headers.add("set-cookie", "b=2; Path=/")
        response.headers["x-upstream"] = NAME
        return response

    @app.get("/<prefix>/refuse")
    async def refuse(request: Request, prefix: str) -> HTTPResponse:
        status = int(request.args.get("status", "403"))
        return json({"name": NAME, "refused": True}, status=status, headers={"x-upstream": NAME})

    @app.websocket("/ws_ep/ws")
    async def echo_socket(request: Request, ws: Websocket) -> None:
        await ws.send(
            json_text(
                {
                    "hello": NAME,
                    "path": request.path,
                    "query": request.query_string,
                    "remote_addr": request.remote_addr,
                    "forwarded_for": request.headers.get("x-forwarded-for"),
                    "origin": request.headers.get("origin"),
                }
            )
        )
        if "close" in request.args:
            await ws.close(int(request.args["close"][0]), request.args.get("reason", ""))
            return
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, str) and message.startswith("close "):
                    _, code, *reason = message.split(" ", 2)
                    await ws.close(int(code), reason[0] if reason else "")
                    return
                if message is not None:
                    await ws.send(message)
        finally:
            received = ws.ws_proto.close_rcvd
            if received is not None:
                app.ctx.closes.append({"code": received.code, "reason": received.reason})

    @app.websocket("/ws_ep/flood")
    async def flood_socket(request: Request, ws: Websocket) -> None:
        message = "x" * int(request.args.get("size", "65536"))
        count = int(request.args.get("count", "0"))
        interval = float(request.args.get("interval", "0"))
        sent = 0
        try:
            while not count or sent < count:
                await ws.send(message)  # waits while the connection's write buffer is full
                sent += 1
                if interval:
                    await asyncio.sleep(interval)
        finally:
            received = ws.ws_proto.close_rcvd
            if received is not None:
                app.ctx.closes.append({"code": received.code, "reason": received.reason})

    @app.websocket("/ws_ep/deaf")
    async def deaf_socket(request: Request, ws: Websocket) -> None:
        await asyncio.sleep(float(request.args.get("seconds", "3600")))

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def echo(request: Request, path: str) -> HTTPResponse:
        body = request.body or b""
        return json(
            {
                "name": NAME,
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": [[k.lower(), v] for k, v in request.headers.items()],
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "remote_addr": request.remote_addr,
                "peer": request.conn_info.client_ip if request.conn_info else None,
            }
        )

    return app


def json_text(value: object) -> str:
    import json as jsonlib

    return jsonlib.dumps(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    create_app().run(
        host=args.host, port=args.port, single_process=True, motd=False, access_log=False
    )


if __name__ == "__main__":
    main()
