"""`LOG_FORMAT=text|json`: one readable line per record, or one JSON object; both redacted."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.logs import build_log_config, request_id_var
from tests.support import REPO_ROOT, ServiceProcess, new_jwt_secret

JWT = "eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl"
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO |WARNING|ERROR|CRITICAL) \S+  ")


def text_logging() -> io.StringIO:
    config = build_log_config("svc_under_test", log_format="text")
    stream = io.StringIO()
    for handler in config["handlers"].values():
        handler["stream"] = stream
    logging.config.dictConfig(config)
    return stream


def test_a_text_line_is_short_and_readable() -> None:
    stream = text_logging()
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("svc_under_test.ws").info(
            "socket opened %s ✅", f"/ws_ep/ws?token={JWT}", extra={"user_id": 3, "note": "a b"}
        )
    finally:
        request_id_var.reset(token)
    [line] = stream.getvalue().splitlines()
    assert TEXT_LINE.match(line), line
    assert line.endswith(
        'INFO  svc_under_test.ws  socket opened /ws_ep/ws?token=[redacted] ✅ user_id=3 note="a b"'
        " request_id=req-42"
    )
    assert len(line) < 120 and "pathname" not in line


def test_a_text_access_line_and_a_traceback_are_redacted() -> None:
    stream = text_logging()
    extra = {"host": "127.0.0.1:5", "request": f"GET http://h/ws_ep/ws?%74oken={JWT}"}
    fields = {**extra, "status": 101, "byte": 0, "duration": " 1.2ms"}
    logging.getLogger("sanic.access").info("", extra=fields)
    try:
        raise ValueError(f"password=hunter22 and {JWT}")
    except ValueError:
        logging.getLogger("svc_under_test").exception("failed on /x?token=%s", JWT)
    written = stream.getvalue()
    assert "hunter22" not in written and "c2lnbmF0dXJl" not in written and "eyJzdWIi" not in written
    access, error = written.splitlines()[0], written.splitlines()[1]
    assert "  GET http://h/ws_ep/ws?%74oken=[redacted] 101 0B 1.2ms host=127.0.0.1:5" in access
    assert access.split()[1:3] == ["INFO", "access"]
    assert error.endswith("ERROR svc_under_test  failed on /x?token=[redacted]")
    assert "Traceback (most recent call last)" in written
    assert "ValueError: password=[redacted] and [redacted]" in written


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_service_writes_the_format_asked_for(log_format: str, tmp_path: Path) -> None:
    env = {
        "JWT_SECRET": new_jwt_secret(),
        "AUTH_DB_URL": f"sqlite://{tmp_path}/a.db",
        "LOG_FORMAT": log_format,
    }
    server = ServiceProcess("auth_service", env, tmp_path).start()
    try:
        response = httpx.get(f"{server.url}/auth/me?token={JWT}", timeout=5)
        request_id = response.headers["x-request-id"]
    finally:
        assert server.stop() == 0
    lines = [line for line in server.logs().splitlines() if request_id in line]
    assert lines, server.logs()
    for line in lines:
        if log_format == "json":
            assert json.loads(line)["request_id"] == request_id
        else:
            assert TEXT_LINE.match(line) and not line.startswith("{"), line
    assert any("/auth/me?token=[redacted]" in line for line in lines)
    assert "c2lnbmF0dXJl" not in server.logs()


def test_an_unknown_log_format_stops_the_service_at_start_up(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--port", "1"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "LOG_FORMAT": "yaml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: LOG_FORMAT: Input should be 'json' or 'text'"
    )
