"""The baseline: a bare Sanic WebSocket server that sends every text frame straight back.

python bench/echo_server.py --port 8099
"""

from __future__ import annotations

import argparse

from sanic import Request, Sanic
from sanic.server.websockets.impl import WebsocketImplProtocol

app = Sanic("bench_echo")


@app.websocket("/ws_ep/ws")
async def echo(request: Request, ws: WebsocketImplProtocol) -> None:
    while True:
        frame = await ws.recv()
        if frame is None:
            return
        await ws.send(frame)


@app.get("/healthz")
async def healthz(request: Request):  # type: ignore[no-untyped-def]
    from sanic.response import json

    return json({"status": "ok"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    # Same shape as the services: Sanic's manager process plus one worker.
    app.run(host=args.host, port=args.port, workers=1, access_log=False, motd=False)
