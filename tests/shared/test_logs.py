"""Log lines are JSON with a request id, and secrets never reach them."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from shared.logs import build_log_config, redact, request_id_var


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """These tests configure logging in the test process: put the root logger back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("GET /ws_ep/ws?token=abc.def.ghi", "GET /ws_ep/ws?token=[redacted]"),
        ("GET /x?a=1&access_token=zzz&b=2", "GET /x?a=1&access_token=[redacted]&b=2"),
        ('{"password": "hunter22", "u": 1}', '{"password": "[redacted]", "u": 1}'),
        ("password=hunter22 user=bob", "password=[redacted] user=bob"),
        ("Authorization: Bearer abc", "Authorization: [redacted]"),
        ("refresh_token=r1", "refresh_token=[redacted]"),
        # Any spelling a server decodes to a secret's name (Sanic reads %74oken as token).
        ("GET /ws?%74oken=abc&since=3", "GET /ws?%74oken=[redacted]&since=3"),
        ("GET /ws?%74%6F%6B%65%6E=abc", "GET /ws?%74%6F%6B%65%6E=[redacted]"),
        ("GET /ws?TOKEN=abc", "GET /ws?TOKEN=[redacted]"),
        ("GET /ws?%2574oken=abc", "GET /ws?%2574oken=[redacted]"),
        ("GET /ws?a=1;pass%77ord=abc", "GET /ws?a=1;pass%77ord=[redacted]"),
        ("GET /x?tokens=abc&page=2", "GET /x?tokens=[redacted]&page=2"),
        ("GET /x?page=2&sort=name", "GET /x?page=2&sort=name"),
        # A JWT is blanked wherever it is, however its dots are spelled.
        ("sent eyJhbGci.eyJzdWIi.c2lnbmF0dXJl ok", "sent [redacted] ok"),
        ("GET /x?next=eyJhbGci%2EeyJzdWIi%2Ec2ln", "GET /x?next=[redacted]"),
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


def test_a_traceback_is_redacted_too() -> None:
    config = build_log_config("svc_under_test")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        raise ValueError("could not open /ws?%74oken=eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl")
    except ValueError:
        logging.getLogger("svc_under_test").exception("failed")
    written = stream.getvalue()
    assert "c2lnbmF0dXJl" not in written and "eyJzdWIi" not in written
    assert "ValueError" in json.loads(written.strip().splitlines()[-1])["exc_info"]


def test_library_loggers_write_through_the_redacting_handler() -> None:
    """The root logger has our handler: a library's warning never reaches Python's bare
    last-resort handler (which would write it unredacted on stderr)."""
    config = build_log_config("svc_under_test")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    logging.getLogger("some.library").warning("retrying /x?token=eyJhbGciOi.eyJzdWIi.c2ln")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "retrying /x?token=[redacted]"
