"""Small helpers for the frames a socket sends: error frames and the asker's copy."""

from __future__ import annotations

import orjson

from todo_ws_service.messages import ErrorCode, error_message, request_id_of
from todo_ws_service.store import encode


def with_request_id(encoded: str, request_id: str | None) -> str:
    """The asker's copy of an encoded message: the same JSON plus its `request_id`."""
    if request_id is None:
        return encoded
    # Splice rather than encode the whole message a second time.
    return f'{encoded[:-1]},"request_id":{orjson.dumps(request_id).decode()}}}'


def error_frame(
    code: ErrorCode,
    message: str,
    details: list[dict[str, str]] | None = None,
    request_id: str | None = None,
) -> str:
    return encode(error_message(code, message, details, request_id))


def request_id_in(frame: str | bytes) -> str | None:
    """The frame's valid `request_id`, if it has one (for replies that skip validation)."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return request_id_of(message) if isinstance(message, dict) else None
