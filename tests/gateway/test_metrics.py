"""The gateway's own `/metrics`: WebSocket tunnels opened, open and failed, counted on a
real gateway in front of a real todo service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.scrape import eventually, scrape
from tests.support import ServiceProcess, free_port
from tests.todo.wsclient import Tokens, new_user_id, open_user_socket


async def test_tunnels_opened_open_and_failed(
    jwt_env: dict[str, str], jwt_secret: str, tmp_path: Path
) -> None:
    tokens = Tokens(jwt_secret)
    todo = ServiceProcess(
        "todo_ws_service", {**jwt_env, "TODO_DB_URL": f"sqlite://{tmp_path}/t.db"}, tmp_path
    ).start()
    gateway = ServiceProcess(
        "gateway",
        {
            "AUTH_UPSTREAMS": f"http://127.0.0.1:{free_port()}",  # not used here
            "TODO_UPSTREAMS": todo.url,
            "GATEWAY_HEALTH_INTERVAL": "0.3",
            "GATEWAY_CONNECT_TIMEOUT": "2",
        },
        tmp_path,
    ).start()
    try:
        user = new_user_id()
        first = await open_user_socket(gateway, tokens, user)
        second = await open_user_socket(gateway, tokens, user)
        both = scrape(gateway.url)
        assert both.value("gateway_ws_tunnels_open") == 2
        assert both.value("gateway_ws_tunnels_opened_total") == 2
        await first.close()
        one = eventually(gateway.url, lambda s: s.value("gateway_ws_tunnels_open") == 1)
        assert one.value("gateway_ws_tunnels_open") == 1

        # A replica that answers the upgrade with an HTTP error: refused, passed on.
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{gateway.ws_url}/ws_ep/no-such-socket", open_timeout=5)
        assert refused.value.response.status_code == 404
        await second.close()

        # No replica reachable: the client's socket is accepted, then closed 1014.
        todo.stop()
        ws = await connect(f"{gateway.ws_url}/ws_ep/ws?token=x", open_timeout=10)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1014

        after = eventually(gateway.url, lambda s: s.value("gateway_ws_tunnels_open") == 0)
        assert after.value("gateway_ws_tunnels_open") == 0
        assert after.value("gateway_ws_tunnels_opened_total") == 2
        assert after.value("gateway_ws_tunnel_failures_total", reason="refused") == 1
        assert after.value("gateway_ws_tunnel_failures_total", reason="unreachable") == 1
        assert after.types["gateway_ws_tunnels_open"] == "gauge"
    finally:
        gateway.stop()
        todo.stop()
