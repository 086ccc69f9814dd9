"""Frames at the byte level (CONTRACT.md section 7, issue 12 finding 10): a text frame that
is not valid UTF-8 closes the socket with 1007 (RFC 6455 section 8.1), and a valid frame
sent before it in the same TCP segment is still answered first.

Sanic's frame assembler raises `UnicodeDecodeError` in a task of its own, so without our
fix the frame (and any after it in the segment) vanished and the socket stayed open.
"""

from __future__ import annotations

import orjson

from tests.support import ServiceProcess
from tests.todo.rawws import OP_CLOSE, OP_CONT, OP_TEXT, RawSocket, frame
from tests.todo.wsclient import Tokens, new_user_id, open_user_socket
from todo_ws_service.messages import server_message_adapter

INVALID_UTF8 = [
    b"\xff",  # never valid
    b'{"action": "get_all_todos", "x": "\xc3\x28"}',  # a bad continuation byte
    b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"a": "\xe2\x82',  # truncated at the end of the message
]


def request(request_id: str) -> bytes:
    return orjson.dumps({"action": "get_all_todos", "request_id": request_id})


async def connected(server: ServiceProcess, tokens: Tokens) -> RawSocket:
    raw = await RawSocket.connect(server.port, tokens.valid(new_user_id()))
    first = await raw.recv_frame()
    assert orjson.loads(first.payload)["type"] == "todos_list"
    return raw


async def test_invalid_utf8_closes_1007_after_answering_the_frame_before_it(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    for bad in INVALID_UTF8:
        raw = await connected(todo_server, tokens)
        try:
            # One write: both frames arrive in one TCP segment.
            await raw.send_raw(frame(request("before")) + frame(bad) + frame(request("after")))
            reply = await raw.recv_frame()
            assert reply.opcode == OP_TEXT, reply
            message = orjson.loads(reply.payload)
            server_message_adapter.validate_python(message)
            assert message["type"] == "todos_list" and message["request_id"] == "before"
            # Nothing after the bad frame is answered: the next frame is the close.
            closing = await raw.recv_frame()
            assert closing.opcode == OP_CLOSE, closing
            assert closing.close_code == 1007, bad
        finally:
            await raw.close()


async def test_invalid_utf8_across_fragments_closes_1007(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    raw = await connected(todo_server, tokens)
    try:
        # "\xe2\x82\xac" (the euro sign) cut after two bytes, then continued wrongly.
        first = frame(b'{"action": "get_all_todos", "x": "\xe2\x82', OP_TEXT, fin=False)
        await raw.send_raw(first + frame(b'("}', OP_CONT))
        assert await raw.close_code() == 1007
    finally:
        await raw.close()


async def test_a_valid_fragmented_message_is_answered(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    raw = await connected(todo_server, tokens)
    try:
        whole = orjson.dumps({"action": "get_all_todos", "request_id": "\u20ac"})
        cut = whole.index("\u20ac".encode()) + 1  # inside the euro sign's three bytes
        await raw.send_raw(frame(whole[:cut], OP_TEXT, fin=False) + frame(whole[cut:], OP_CONT))
        message = orjson.loads((await raw.recv_frame()).payload)
        assert message["type"] == "todos_list" and message["request_id"] == "\u20ac"
    finally:
        await raw.close()


async def test_invalid_utf8_closes_1007_even_when_rate_limited(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    raw = await connected(todo_server, tokens)
    try:
        # More than the burst (60): the bad frame arrives with the bucket empty.
        await raw.send_raw(b"".join(frame(b"{}") for _ in range(80)) + frame(b"\xff"))
        assert await raw.close_code() == 1007
    finally:
        await raw.close()


async def test_other_sockets_are_untouched_by_a_1007(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    user = new_user_id()
    bystander = await open_user_socket(todo_server, tokens, user)
    raw = await RawSocket.connect(todo_server.port, tokens.valid(user))
    try:
        await raw.recv_frame()
        await raw.send_raw(frame(b"\xff"))
        assert await raw.close_code() == 1007
        await bystander.expect_nothing_pending()
    finally:
        await raw.close()
        await bystander.close()
