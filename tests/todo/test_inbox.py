"""The socket's own receive path (`todo_ws_service/inbox.py`): frames of one TCP read are
handed to the receive loop without Sanic's per-message task; a read that holds a control
frame goes Sanic's way. Either way every message is answered once, in the order it was sent.
A read of exactly one text frame skips websockets' parser only when that parser stands
between two frames.
"""

from __future__ import annotations

import asyncio

import orjson

from tests.support import ServiceProcess
from tests.todo.rawws import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawSocket, frame
from tests.todo.wsclient import Tokens, new_user_id
from todo_ws_service.inbox import PAUSE_AT
from todo_ws_service.messages import server_message_adapter


def request(request_id: str) -> bytes:
    return orjson.dumps({"action": "get_all_todos", "request_id": request_id})


async def test_one_read_of_many_frames_with_control_frames_is_answered_in_order(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    count = 4 * PAUSE_AT  # more than the inbox queues before it stops reading
    frames = []
    for i in range(count):
        payload = request(f"r{i}")
        if i % 7 == 3:  # a fragmented message
            frames += [frame(payload[:5], OP_TEXT, fin=False), frame(payload[5:], OP_CONT)]
        elif i % 7 == 5:  # JSON in a binary frame is accepted too
            frames.append(frame(payload, OP_BINARY))
        else:
            frames.append(frame(payload))
        if i % 9 == 4:  # a ping between data frames: this read goes Sanic's way
            frames.append(frame(f"ping{i}".encode(), OP_PING))
    raw = await RawSocket.connect(todo_server.port, tokens.valid(new_user_id()))
    try:
        first = await raw.recv_frame()
        assert orjson.loads(first.payload)["type"] == "todos_list"
        await raw.send_raw(b"".join(frames))  # one write, one or a few TCP reads
        answered: list[str] = []
        pongs: list[bytes] = []
        while len(answered) < count:
            received = await raw.recv_frame()
            if received.opcode == OP_PONG:
                pongs.append(received.payload)
                continue
            assert received.opcode == OP_TEXT, received
            message = orjson.loads(received.payload)
            server_message_adapter.validate_python(message)
            assert message["type"] == "todos_list", message
            answered.append(message["request_id"])
        assert answered == [f"r{i}" for i in range(count)]
        # Every ping is answered too (its pong may come before or after the replies).
        while len(pongs) < len([i for i in range(count) if i % 9 == 4]):
            received = await raw.recv_frame()
            assert received.opcode == OP_PONG, received
            pongs.append(received.payload)
        assert sorted(pongs) == sorted(f"ping{i}".encode() for i in range(count) if i % 9 == 4)
    finally:
        await raw.close()


async def test_replies_of_every_frame_length_arrive_whole(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    """Replies written straight to the transport: 7-bit, 16-bit and 64-bit lengths."""
    raw = await RawSocket.connect(todo_server.port, tokens.valid(new_user_id()))
    try:
        await raw.recv_frame()
        sizes = []
        # An error (under 126 bytes), todos of growing size (up to 16-bit lengths), then a
        # list of them over 64 KiB.
        await raw.send_raw(frame(b"[]"))
        reply = await raw.recv_frame()
        sizes.append(len(reply.payload))
        assert orjson.loads(reply.payload)["code"] == "invalid_json"
        descriptions = ["d" * min(2000, 200 * i) for i in range(40)]  # 42 messages: no limit
        for i, description in enumerate(descriptions):
            create = {
                "action": "create_todo",
                "payload": {"title": f"t{i}", "description": description},
            }
            await raw.send_raw(frame(orjson.dumps(create)))
            reply = await raw.recv_frame()
            sizes.append(len(reply.payload))
            message = orjson.loads(reply.payload)
            assert message["type"] == "todo_created", message
            assert message["data"]["description"] == description
        await raw.send_raw(frame(request("all")))
        reply = await raw.recv_frame()
        sizes.append(len(reply.payload))
        message = orjson.loads(reply.payload)
        assert message["request_id"] == "all" and len(message["data"]) == 40
        assert min(sizes) < 126 and any(126 <= s < 65536 for s in sizes) and max(sizes) >= 65536
    finally:
        await raw.close()


async def test_a_read_that_looks_like_a_frame_inside_a_payload_is_payload(
    todo_server: ServiceProcess, tokens: Tokens
) -> None:
    """A frame's header in one read, its payload in the next: that payload is exactly a
    valid request frame, but the parser is waiting for payload bytes, so it must be taken
    as such (a binary message that is not JSON), and the socket must stay in step."""
    inner = frame(request("inner"))
    assert len(inner) < 126
    header = bytes([0x80 | OP_BINARY, 0x80 | len(inner)])
    header += bytes(4)  # a zero mask: the payload goes on the wire as it is
    raw = await RawSocket.connect(todo_server.port, tokens.valid(new_user_id()))
    try:
        await raw.recv_frame()
        await raw.send_raw(frame(request("whole")))  # the usual read: one whole frame
        assert orjson.loads((await raw.recv_frame()).payload)["request_id"] == "whole"
        await raw.send_raw(header)
        await asyncio.sleep(0.2)  # its own TCP read
        await raw.send_raw(inner)
        reply = orjson.loads((await raw.recv_frame()).payload)
        assert reply["type"] == "error" and reply["code"] == "invalid_json", reply
        await raw.send_raw(frame(request("after")))
        reply = orjson.loads((await raw.recv_frame()).payload)
        assert reply["type"] == "todos_list" and reply["request_id"] == "after", reply
    finally:
        await raw.close()
