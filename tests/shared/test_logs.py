"""Log lines are JSON with a request id, and secrets never reach them."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from shared.logs import build_log_config, redact, request_id_var


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("GET /ws_ep/ws?token=abc.def.ghi", "GET /ws_ep/ws?token=[redacted]"),
        ("GET /x?a=1&access_token=zzz&b=2", "GET /x?a=1&access_token=[redacted]&b=2"),
        ('{"password": "hunter22", "u": 1}', '{"password": "[redacted]", "u": 1}'),
        ("password=hunter22 user=bob", "password=[redacted] user=bob"),
        ("Authorization: Bearer abc", "Authorization: [redacted]"),
        ("refresh_token=r1", "refresh_token=[redacted]"),
    ],
)
def test_redact(raw: str, clean: str) -> None:
    assert redact(raw) == clean


def test_lines_are_json_with_request_id_and_no_token() -> None:
    config = build_log_config("svc_under_test")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    log = logging.getLogger("svc_under_test")
    token = request_id_var.set("req-42")
    try:
        log.info("opening %s", "/ws_ep/ws?token=eyJhbGciOi.secret.sig")
    finally:
        request_id_var.reset(token)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "req-42"
    assert line["level"] == "INFO"
    assert "eyJhbGciOi" not in stream.getvalue()
    assert line["message"] == "opening /ws_ep/ws?token=[redacted]"
