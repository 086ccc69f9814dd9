"""CONTRACT.md section 4 over real sockets, on SQLite and PostgreSQL: every message, every
error code, request ids, ordering, fan-out and isolation."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support import ServiceProcess
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_socket, open_user_socket
from todo_ws_service.messages import Todo

# ---------------------------------------------------------------- helpers


async def create(sock: Socket, title: str = "Buy milk", **fields: Any) -> dict[str, Any]:
    reply = await sock.request({"action": "create_todo", "payload": {"title": title, **fields}})
    assert reply["type"] == "todo_created", reply
    return reply["data"]


def assert_utc_iso(value: str) -> None:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert "T" in value


# ---------------------------------------------------------------- on connect


async def test_first_message_is_the_users_list_in_id_order(
    todo_server: ServiceProcess, tokens: Tokens, sock: Socket, user_id: int
) -> None:
    assert sock.initial == {"type": "todos_list", "data": [], "rev": 0}  # type: ignore[attr-defined]
    made = [await create(sock, f"todo {i}") for i in range(3)]
    again = await open_user_socket(todo_server, tokens, user_id)
    listed = again.initial["data"]  # type: ignore[attr-defined]
    assert listed == made
    assert [t["id"] for t in listed] == sorted(t["id"] for t in listed)
    await again.close()


def _bad_tokens(tokens: Tokens) -> dict[str, str | None]:
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-jwt",
        "wrong_key": tokens.custom(key="another-secret-that-is-long-enough-to-be-ok-1234"),
        "expired": tokens.custom(exp=1_000_000_000, iat=999_999_000),
        "alg_none": tokens.alg_none(),
        "wrong_audience": tokens.custom(aud="someone-else"),
        "wrong_issuer": tokens.custom(iss="evil-issuer"),
        "no_sub": tokens.custom(sub=None),
        "no_exp": tokens.custom(exp=None),
        "non_numeric_sub": tokens.custom(sub="alice"),
        "zero_sub": tokens.custom(sub="0"),
        "other_algorithm": tokens.custom(algorithm="HS512"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "empty",
        "garbage",
        "wrong_key",
        "expired",
        "alg_none",
        "wrong_audience",
        "wrong_issuer",
        "no_sub",
        "no_exp",
        "non_numeric_sub",
        "zero_sub",
        "other_algorithm",
    ],
)
async def test_bad_token_gets_auth_failed_then_1008(
    todo_server: ServiceProcess, tokens: Tokens, kind: str
) -> None:
    # The handshake itself succeeds (a browser can't read an HTTP 401 on a WebSocket).
    sock = await open_socket(todo_server, _bad_tokens(tokens)[kind])
    message = await sock.recv()
    assert message["type"] == "error" and message["code"] == "auth_failed", message
    assert message["message"]
    assert await sock.close_code() == 1008


async def test_token_expiring_while_open_gets_token_expired_then_1008(
    todo_server: ServiceProcess, tokens: Tokens, user_id: int
) -> None:
    sock = await open_socket(todo_server, tokens.valid(user_id, ttl=2))
    assert (await sock.recv())["type"] == "todos_list"
    # Still usable before expiry.
    assert (await sock.request({"action": "get_all_todos"}))["type"] == "todos_list"
    message = await sock.recv(timeout=6)
    assert message["type"] == "error" and message["code"] == "token_expired", message
    assert await sock.close_code() == 1008


# ---------------------------------------------------------------- the four actions


async def test_create_trims_title_and_returns_the_full_todo(sock: Socket, user_id: int) -> None:
    reply = await sock.request(
        {
            "action": "create_todo",
            "payload": {"title": "  Buy milk  ", "description": "2 litres"},
            "request_id": "req-1",
        }
    )
    assert reply["type"] == "todo_created" and reply["request_id"] == "req-1"
    todo = Todo.model_validate(reply["data"])
    assert todo.title == "Buy milk" and todo.description == "2 litres"
    assert todo.completed is False and todo.owner_id == user_id and todo.id > 0
    assert_utc_iso(reply["data"]["created_at"])
    assert_utc_iso(reply["data"]["updated_at"])


async def test_create_with_every_field(sock: Socket) -> None:
    data = await create(sock, "x" * 200, description="d" * 2000, completed=True)
    assert data["title"] == "x" * 200 and data["completed"] is True
    assert len(data["description"]) == 2000
    padded = await create(sock, "   " + "y" * 200 + "   ", description=None)
    assert padded["title"] == "y" * 200 and padded["description"] is None


@pytest.mark.parametrize("payload", [None, {}, "absent"])
async def test_get_all_todos_payload_forms(sock: Socket, payload: object) -> None:
    made = await create(sock)
    message: dict[str, Any] = {"action": "get_all_todos", "request_id": "all"}
    if payload != "absent":
        message["payload"] = payload
    reply = await sock.request(message)
    assert reply == {"type": "todos_list", "data": [made], "rev": 1, "request_id": "all"}


async def test_update_changes_only_the_given_fields(sock: Socket) -> None:
    made = await create(sock, "old", description="keep me")
    reply = await sock.request(
        {"action": "update_todo", "todo_id": made["id"], "payload": {"completed": True}}
    )
    assert reply["type"] == "todo_updated" and "request_id" not in reply
    updated = reply["data"]
    assert updated["completed"] is True and updated["title"] == "old"
    assert updated["description"] == "keep me"
    assert updated["created_at"] == made["created_at"]
    assert updated["updated_at"] >= made["updated_at"]

    reply = await sock.request(
        {
            "action": "update_todo",
            "todo_id": made["id"],
            "payload": {"title": "  new  ", "description": None},
            "request_id": "u2",
        }
    )
    assert reply["request_id"] == "u2"
    assert reply["data"]["title"] == "new" and reply["data"]["description"] is None
    listed = (await sock.request({"action": "get_all_todos"}))["data"]
    assert listed == [reply["data"]]


async def test_delete_then_not_found(sock: Socket) -> None:
    made = await create(sock)
    reply = await sock.request({"action": "delete_todo", "todo_id": made["id"], "request_id": "d"})
    deleted = {"type": "todo_deleted", "rev": 2, "data": {"todo_id": made["id"]}, "request_id": "d"}
    assert reply == deleted
    again = await sock.request({"action": "delete_todo", "todo_id": made["id"], "request_id": "d2"})
    assert again["type"] == "error" and again["code"] == "not_found"
    assert again["request_id"] == "d2"
    update = await sock.request(
        {"action": "update_todo", "todo_id": made["id"], "payload": {"title": "x"}}
    )
    assert update["code"] == "not_found"
    assert (await sock.request({"action": "get_all_todos"}))["data"] == []


async def test_owner_id_cannot_be_set_by_a_client(sock: Socket, user_id: int) -> None:
    reply = await sock.request(
        {"action": "create_todo", "payload": {"title": "mine", "owner_id": user_id + 1}}
    )
    assert reply["code"] == "validation_error"
    assert reply["details"][0]["field"] == "owner_id"
    # An owner_id beside the payload is not part of the message and changes nothing.
    reply = await sock.request(
        {"action": "create_todo", "payload": {"title": "mine"}, "owner_id": user_id + 1}
    )
    assert reply["data"]["owner_id"] == user_id


# ---------------------------------------------------------------- bad input

BAD_MESSAGES: list[tuple[str, Any, str, str | None]] = [
    # (case, frame, expected code, field named in details)
    ("not_json", "this is not json", "invalid_json", None),
    ("truncated_json", '{"action": "get_all_todos"', "invalid_json", None),
    ("json_array", "[1, 2, 3]", "invalid_json", None),
    ("json_string", '"get_all_todos"', "invalid_json", None),
    ("json_number", "42", "invalid_json", None),
    ("json_null", "null", "invalid_json", None),
    ("no_action", {"payload": None}, "invalid_message", None),
    ("unknown_action", {"action": "drop_tables"}, "invalid_message", None),
    ("action_not_string", {"action": 5}, "invalid_message", None),
    (
        "request_id_too_long",
        {"action": "get_all_todos", "request_id": "r" * 65},
        "invalid_message",
        None,
    ),
    (
        "request_id_not_string",
        {"action": "get_all_todos", "request_id": 7},
        "invalid_message",
        None,
    ),
    ("delete_no_todo_id", {"action": "delete_todo"}, "invalid_message", None),
    ("todo_id_zero", {"action": "delete_todo", "todo_id": 0}, "invalid_message", None),
    ("todo_id_negative", {"action": "delete_todo", "todo_id": -1}, "invalid_message", None),
    ("todo_id_string", {"action": "delete_todo", "todo_id": "5"}, "invalid_message", None),
    ("todo_id_true", {"action": "delete_todo", "todo_id": True}, "invalid_message", None),
    ("todo_id_float", {"action": "delete_todo", "todo_id": 1.5}, "invalid_message", None),
    ("todo_id_huge", {"action": "delete_todo", "todo_id": 2**64}, "invalid_message", None),
    (
        "update_todo_id_null",
        {"action": "update_todo", "todo_id": None, "payload": {"title": "x"}},
        "invalid_message",
        None,
    ),
    ("create_no_payload", {"action": "create_todo"}, "validation_error", "payload"),
    (
        "create_payload_not_object",
        {"action": "create_todo", "payload": "x"},
        "validation_error",
        "payload",
    ),
    ("create_no_title", {"action": "create_todo", "payload": {}}, "validation_error", "title"),
    (
        "title_not_string",
        {"action": "create_todo", "payload": {"title": 5}},
        "validation_error",
        "title",
    ),
    (
        "title_null",
        {"action": "create_todo", "payload": {"title": None}},
        "validation_error",
        "title",
    ),
    (
        "title_empty",
        {"action": "create_todo", "payload": {"title": ""}},
        "validation_error",
        "title",
    ),
    (
        "title_whitespace",
        {"action": "create_todo", "payload": {"title": "   \t "}},
        "validation_error",
        "title",
    ),
    (
        "title_too_long",
        {"action": "create_todo", "payload": {"title": "x" * 201}},
        "validation_error",
        "title",
    ),
    (
        "title_huge",
        {"action": "create_todo", "payload": {"title": "x" * 60_000}},
        "validation_error",
        "title",
    ),
    (
        "description_too_long",
        {"action": "create_todo", "payload": {"title": "t", "description": "d" * 2001}},
        "validation_error",
        "description",
    ),
    (
        "description_not_string",
        {"action": "create_todo", "payload": {"title": "t", "description": 3}},
        "validation_error",
        "description",
    ),
    (
        "completed_not_bool",
        {"action": "create_todo", "payload": {"title": "t", "completed": "yes"}},
        "validation_error",
        "completed",
    ),
    (
        "completed_int",
        {"action": "create_todo", "payload": {"title": "t", "completed": 1}},
        "validation_error",
        "completed",
    ),
    (
        "unknown_field",
        {"action": "create_todo", "payload": {"title": "t", "colour": "red"}},
        "validation_error",
        "colour",
    ),
    (
        "set_id",
        {"action": "create_todo", "payload": {"title": "t", "id": 1}},
        "validation_error",
        "id",
    ),
    (
        "update_empty",
        {"action": "update_todo", "todo_id": 1, "payload": {}},
        "validation_error",
        "payload",
    ),
    ("update_no_payload", {"action": "update_todo", "todo_id": 1}, "validation_error", "payload"),
    (
        "update_title_null",
        {"action": "update_todo", "todo_id": 1, "payload": {"title": None}},
        "validation_error",
        "title",
    ),
    (
        "update_completed_null",
        {"action": "update_todo", "todo_id": 1, "payload": {"completed": None}},
        "validation_error",
        "completed",
    ),
    (
        "update_unknown_field",
        {"action": "update_todo", "todo_id": 1, "payload": {"done": True}},
        "validation_error",
        "done",
    ),
    (
        "get_all_junk_payload",
        {"action": "get_all_todos", "payload": {"x": 1}},
        "validation_error",
        "x",
    ),
]


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [pytest.param(frame, code, field, id=case) for case, frame, code, field in BAD_MESSAGES],
)
async def test_bad_input_gets_its_error_code_and_the_socket_stays_usable(
    sock: Socket, frame: Any, code: str, field: str | None
) -> None:
    reply = await sock.request(frame)
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert reply["message"]
    if field is not None:
        assert field in [d["field"] for d in reply["details"]], reply
    # A valid request_id is echoed on the error; an invalid one (or none) is not.
    request_id = frame.get("request_id") if isinstance(frame, dict) else None
    if isinstance(request_id, str) and len(request_id) <= 64:
        assert reply["request_id"] == request_id
    else:
        assert "request_id" not in reply
    await sock.expect_nothing_pending()
    # Nothing was written by a refused message.
    assert (await sock.request({"action": "get_all_todos"}))["data"] == []


async def test_error_replies_echo_a_valid_request_id(sock: Socket) -> None:
    reply = await sock.request(
        {"action": "create_todo", "payload": {"title": ""}, "request_id": "r" * 64}
    )
    assert reply["code"] == "validation_error" and reply["request_id"] == "r" * 64
    reply = await sock.request({"action": "nope", "request_id": "x"})
    assert reply["code"] == "invalid_message" and reply["request_id"] == "x"
    # The empty string is a valid request_id too (found by test_fuzz.py).
    reply = await sock.request({"action": "refresh_token", "request_id": ""})
    assert reply["code"] == "validation_error" and reply["request_id"] == ""


async def test_binary_json_frame_is_understood(sock: Socket) -> None:
    reply = await sock.request(b'{"action": "get_all_todos", "request_id": "bin"}')  # type: ignore[arg-type]
    assert reply["type"] == "todos_list" and reply["request_id"] == "bin"


# ---------------------------------------------------------------- ordering


async def test_replies_come_in_request_order_under_50_pipelined_requests(
    sock: Socket,
) -> None:
    made = await create(sock, "seed")
    requests: list[dict[str, Any]] = []
    for i in range(50):
        kind = i % 5
        message: dict[str, Any]
        if kind == 0:
            message = {"action": "create_todo", "payload": {"title": f"t{i}"}}
        elif kind == 1:
            message = {
                "action": "update_todo",
                "todo_id": made["id"],
                "payload": {"title": f"u{i}"},
            }
        elif kind == 2:
            message = {"action": "get_all_todos"}
        elif kind == 3:
            message = {"action": "delete_todo", "todo_id": 2**62}  # not_found
        else:
            message = {"action": "create_todo", "payload": {"title": ""}}  # validation_error
        requests.append({**message, "request_id": f"r{i}"})
    for message in requests:
        await sock.send(message)
    replies = [await sock.recv() for _ in requests]
    assert [r["request_id"] for r in replies] == [f"r{i}" for i in range(50)]
    expected = ["todo_created", "todo_updated", "todos_list", "error", "error"] * 10
    assert [r["type"] for r in replies] == expected
    # The updates were applied in order too: the last one wins.
    assert replies[46]["data"]["title"] == "u46"
    await sock.expect_nothing_pending()


# ---------------------------------------------------------------- fan-out and isolation


async def test_changes_reach_every_socket_of_the_user_once_with_request_id_only_for_the_asker(
    todo_server: ServiceProcess, tokens: Tokens, user_id: int
) -> None:
    asker = await open_user_socket(todo_server, tokens, user_id)
    other_tab = await open_user_socket(todo_server, tokens, user_id)
    stranger = await open_user_socket(todo_server, tokens, new_user_id())

    reply = await asker.request(
        {"action": "create_todo", "payload": {"title": "shared"}, "request_id": "c1"}
    )
    assert reply["type"] == "todo_created" and reply["request_id"] == "c1"
    seen = await other_tab.recv()
    assert seen == {"type": "todo_created", "rev": reply["rev"], "data": reply["data"]}
    todo_id = reply["data"]["id"]

    # A change made on the other tab comes back to the first one, without a request id.
    reply = await other_tab.request(
        {
            "action": "update_todo",
            "todo_id": todo_id,
            "payload": {"completed": True},
            "request_id": "u1",
        }
    )
    assert reply["request_id"] == "u1"
    assert await asker.recv() == {"type": "todo_updated", "rev": 2, "data": reply["data"]}

    reply = await asker.request({"action": "delete_todo", "todo_id": todo_id})
    assert reply == {"type": "todo_deleted", "rev": 3, "data": {"todo_id": todo_id}}
    assert await other_tab.recv() == reply

    # Exactly one copy each, and nothing at all for another user.
    await asker.expect_nothing_pending()
    await other_tab.expect_nothing_pending()
    await stranger.expect_nothing_pending()
    # A plain read is not broadcast.
    await asker.request({"action": "get_all_todos"})
    await other_tab.expect_nothing_pending()
    for s in (asker, other_tab, stranger):
        await s.close()


async def test_another_users_todo_is_not_found_and_untouched(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    alice = await open_user_socket(todo_server, tokens, new_user_id())
    bob = await open_user_socket(todo_server, tokens, new_user_id())
    todo = await create(alice, "alice's")

    update = await bob.request(
        {"action": "update_todo", "todo_id": todo["id"], "payload": {"title": "mine now"}}
    )
    assert update["type"] == "error" and update["code"] == "not_found"
    delete = await bob.request({"action": "delete_todo", "todo_id": todo["id"]})
    assert delete["code"] == "not_found"
    assert (await bob.request({"action": "get_all_todos"}))["data"] == []
    assert (await alice.request({"action": "get_all_todos"}))["data"] == [todo]
    await alice.expect_nothing_pending()
    await alice.close()
    await bob.close()


async def test_closed_socket_stops_receiving_and_others_keep_working(
    todo_server: ServiceProcess, tokens: Tokens, user_id: int
) -> None:
    first = await open_user_socket(todo_server, tokens, user_id)
    second = await open_user_socket(todo_server, tokens, user_id)
    await first.close()
    await create(second, "after the first tab closed")
    await second.expect_nothing_pending()
    await second.close()


# ---------------------------------------------------------------- limits


async def test_rate_limit_answers_rate_limited_and_keeps_the_socket(sock: Socket) -> None:
    # Defaults: 30 messages a second, bursts of 60. 100 at once overflow the bucket.
    for i in range(100):
        await sock.send({"action": "get_all_todos", "request_id": f"q{i}"})
    replies = [await sock.recv() for _ in range(100)]
    assert [r["request_id"] for r in replies] == [f"q{i}" for i in range(100)]
    limited = [r for r in replies if r["type"] == "error"]
    assert limited and all(r["code"] == "rate_limited" for r in limited)
    assert sum(r["type"] == "todos_list" for r in replies) >= 60
    # The bucket refills: after a short pause the socket is served again.
    await asyncio.sleep(0.2)
    await sock.expect_nothing_pending()


async def test_malformed_frames_spend_tokens_too(sock: Socket) -> None:
    for _ in range(80):
        await sock.send("not json")
    codes = [(await sock.recv())["code"] for _ in range(80)]
    assert set(codes) == {"invalid_json", "rate_limited"}
    assert codes.count("invalid_json") <= 62  # the burst of 60, plus a little refill


async def test_frame_over_the_size_limit_closes_with_1009(
    todo_server: ServiceProcess, tokens: Tokens, user_id: int
) -> None:
    sock = await open_user_socket(todo_server, tokens, user_id)
    big = '{"action": "create_todo", "payload": {"title": "' + "x" * 70_000 + '"}}'
    await sock.send(big)
    assert await sock.close_code() == 1009
    # Nothing was stored, and the service is fine.
    again = await open_user_socket(todo_server, tokens, user_id)
    assert again.initial["data"] == []  # type: ignore[attr-defined]
    await again.close()


async def test_a_frame_just_under_the_limit_is_answered(sock: Socket) -> None:
    frame = '{"action": "get_all_todos", "request_id": "big", "padding": "' + "p" * 65_000 + '"}'
    assert len(frame.encode()) <= 65_536
    reply = await sock.request(frame)
    assert reply["type"] == "todos_list" and reply["request_id"] == "big"


# ---------------------------------------------------------------- health


def test_health_and_readiness(todo_server: ServiceProcess) -> None:
    for prefix in ("", "/ws_ep"):
        assert httpx.get(f"{todo_server.url}{prefix}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{todo_server.url}{prefix}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "fanout": "ok"}


def test_the_token_never_reaches_the_log(todo_server: ServiceProcess, tokens: Tokens) -> None:
    # Every socket the tests opened carried a token in its URL.
    log = todo_server.log_path.read_text(errors="replace")
    assert "token=[redacted]" in log
    assert "token=ey" not in log
