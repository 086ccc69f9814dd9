"""The prose of the AsyncAPI document (`asyncapi.py`): protocol summary, error and close codes.

Only words live here; every message shape comes from the models in `messages.py`.
"""

from __future__ import annotations

from typing import Final

INFO_DESCRIPTION: Final = """\
Real-time todos over one WebSocket: `ws://HOST:8000/ws_ep/ws?token=<access_token>`.
Every frame is one JSON text message. A client sends messages with an `action`; the server \
sends messages with a `type`.

**Connecting.** The handshake is always accepted. With a valid token the first message is \
`todos_list` (the user's todos in id order, with the user's revision `rev`); with a missing, \
malformed, wrongly signed or expired token it is an `error` `auth_failed`, then close 1008.

**Requests and replies.** Any client message may carry `request_id` (a string of at most 64 \
chars); the direct reply to it, confirmation or `error`, carries the same `request_id`. \
Replies to one connection come in the order its requests were sent. A write \
(`create_todo`, `update_todo`, `delete_todo`) is also sent, without `request_id`, to every \
other open socket of the same user (all tabs, devices and replicas).

**How a client stays in sync.** Every todo has a `version` (1 when created, +1 per update) \
and every user a revision `rev` (+1 per committed change, in commit order across replicas). \
`todos_list` carries the `rev` of its snapshot, each event the `rev` of its change. Each \
socket gets its user's changes in increasing `rev` order with no gap: what could not be \
delivered as an event arrives as a `todos_delta` (the todos changed and the ids deleted \
after `since`, up to `rev`) before any later event. A client keeps the highest `rev` it \
applied and ignores any change at or below it. After a reconnect it resumes with \
`?since=<rev>` (or in band with the `sync` action) and gets a `todos_delta` instead of the \
full list, or a full `todos_list` when the server cannot answer from that revision. \
`update_todo` and `delete_todo` may carry `if_version` (optimistic concurrency: a mismatch \
answers `conflict` with the current todo); writes may carry an `idempotency_key` so a retry \
after a lost reply changes nothing and gets the first reply again. Before the access token \
expires the client sends `refresh_token` with a new one; otherwise the server sends \
`token_expired` and closes with 1008, and the client reconnects with a fresh token.

**Errors.** Every failure is an `error` message with a machine `code` (see the `error` \
message's `x-error-codes`); only `auth_failed` at connect, `token_expired` and \
`too_many_connections` close the socket. Close codes are listed in the channel's \
`x-close-codes`.
"""

CHANNEL_DESCRIPTION: Final = """\
The one WebSocket of the protocol. Query parameters: `token` (required, the access token) \
and `since` (optional, a revision to resume from). Through the gateway the address is the \
same: it forwards `/ws_ep/*` unchanged."""

# code -> (when it is sent, what happens to the socket)
ERROR_CODES: Final[dict[str, tuple[str, str]]] = {
    "invalid_json": ("the frame is not JSON, or not a JSON object", "stays open"),
    "invalid_message": (
        "`action` missing or unknown; `todo_id` missing or not a positive integer; a malformed "
        "`request_id`, `if_version` or `idempotency_key` (nothing is written)",
        "stays open",
    ),
    "validation_error": (
        "the payload breaks the `TodoCreate`/`TodoUpdate` rules; `details` names the fields",
        "stays open",
    ),
    "not_found": (
        "no such todo for this user (another user's todo is not found too)",
        "stays open",
    ),
    "rate_limited": ("more messages than the per-connection limit allows", "stays open"),
    "auth_failed": (
        "at connect: token missing, malformed, wrongly signed or expired (then close 1008); "
        "in answer to `refresh_token`: the new token is invalid, expired or another user's",
        "closed with 1008 at connect; stays open after `refresh_token`",
    ),
    "token_expired": (
        "the socket's token expired while it was open; reconnect with a fresh token",
        "closed with 1008",
    ),
    "internal_error": ("anything unexpected; no stack trace is sent", "stays open"),
    "conflict": (
        "`if_version` does not match the todo's version; nothing changed, `data` is the "
        "current todo",
        "stays open",
    ),
    "idempotency_key_reused": (
        "an `idempotency_key` repeated with a different action, `todo_id` or payload; "
        "nothing changed",
        "stays open",
    ),
    "too_many_connections": (
        "the user already has `WS_MAX_CONNECTIONS_PER_USER` open sockets on this replica",
        "closed with 1013",
    ),
    "limit_reached": (
        "`create_todo` when the user already has `TODO_MAX_PER_USER` todos",
        "stays open",
    ),
}

CLOSE_CODES: Final[dict[int, str]] = {
    1000: "normal closure",
    1001: "going away: the server is shutting down (reconnect, another replica may answer)",
    1007: "a text frame that is not valid UTF-8",
    1008: "policy violation: `auth_failed` at connect or `token_expired` (an `error` "
    "message with the code comes first)",
    1009: "message too big: a frame larger than `WS_MAX_MESSAGE` (64 KiB by default)",
    1011: "internal error: the user's todos could not be loaded at connect, or the "
    "delta that fills a gap in the socket's events could not be read (resume with `since`)",
    1013: "try again later: the socket did not read its messages (more than "
    "`WS_MAX_BUFFERED` unsent, or none taken for a whole `WS_PING_INTERVAL`), or too many "
    "connections for this user (`too_many_connections` first)",
    1014: "bad gateway: sent by the gateway when no todo service replica is reachable",
}


def close_code_table() -> str:
    """The close codes as a Markdown list, for the channel's description."""
    lines = [f"- `{code}`: {text}" for code, text in CLOSE_CODES.items()]
    return "Close codes:\n\n" + "\n".join(lines)


# One line per message, for its `summary` (the models' docstrings become descriptions).
SUMMARIES: Final[dict[str, str]] = {
    "get_all_todos": "Ask for the full list of the user's todos.",
    "create_todo": "Create a todo.",
    "update_todo": "Change some fields of a todo (optionally only if at version `if_version`).",
    "delete_todo": "Delete a todo (optionally only if at version `if_version`).",
    "sync": "Ask for the changes after revision `since`.",
    "refresh_token": "Give the open socket a new access token before the current one expires.",
    "todos_list": "The user's todos in id order and the revision `rev` they reflect.",
    "todos_delta": "The todos changed and the ids deleted after revision `since`, up to `rev`.",
    "todo_created": "A todo was created (to every socket of the user).",
    "todo_updated": "A todo was updated (to every socket of the user).",
    "todo_deleted": "A todo was deleted (to every socket of the user).",
    "token_refreshed": "The socket's new expiry after `refresh_token`.",
    "error": "A request failed, or the connection is refused or ends (see `code`).",
}

_TODO: Final = {
    "id": 5,
    "title": "Buy milk",
    "description": "2 litres",
    "completed": False,
    "owner_id": 7,
    "created_at": "2026-01-01T09:00:00Z",
    "updated_at": "2026-01-01T09:05:00Z",
    "version": 2,
}

# One example per message; `asyncapi.py` checks each against its model.
EXAMPLES: Final[dict[str, dict[str, object]]] = {
    "get_all_todos": {"action": "get_all_todos", "payload": None, "request_id": "r1"},
    "create_todo": {
        "action": "create_todo",
        "payload": {"title": "Buy milk", "description": "2 litres"},
        "idempotency_key": "0b8e5e5e-4c9b-4f8e-9d43-0c0d9a1f6f01",
        "request_id": "r2",
    },
    "update_todo": {
        "action": "update_todo",
        "todo_id": 5,
        "payload": {"completed": True},
        "if_version": 2,
        "request_id": "r3",
    },
    "delete_todo": {"action": "delete_todo", "todo_id": 5, "request_id": "r4"},
    "sync": {"action": "sync", "since": 41, "request_id": "r5"},
    "refresh_token": {"action": "refresh_token", "payload": {"token": "eyJhbGciOi..."}},
    "todos_list": {"type": "todos_list", "data": [_TODO], "rev": 42},
    "todos_delta": {
        "type": "todos_delta",
        "since": 41,
        "rev": 43,
        "data": {"upserted": [_TODO], "deleted": [3]},
        "request_id": "r5",
    },
    "todo_created": {"type": "todo_created", "rev": 42, "data": _TODO, "request_id": "r2"},
    "todo_updated": {"type": "todo_updated", "rev": 43, "data": _TODO},
    "todo_deleted": {"type": "todo_deleted", "rev": 44, "data": {"todo_id": 5}},
    "token_refreshed": {
        "type": "token_refreshed",
        "expires_at": "2026-01-01T09:15:00Z",
        "request_id": "r6",
    },
    "error": {
        "type": "error",
        "code": "validation_error",
        "message": "the payload is not valid",
        "details": [{"field": "title", "message": "String should have at least 1 character"}],
        "request_id": "r2",
    },
}
