"""The WebSocket fuzzed with hypothesis (issue 12, "Suites"): random JSON, protocol-shaped
messages with wrong types, deep nesting, huge numbers, unicode, binary frames, text frames
of random (often invalid UTF-8) bytes, random frames and raw garbage, against one real
service. Whatever comes in:

- every frame the server sends is a text frame holding a contract message
  (`server_message_adapter`), and a well-framed client frame gets exactly one answer,
  never `internal_error`, carrying the frame's `request_id` when it has a valid one;
- the socket stays open, or is closed with a code the contract (or RFC 6455, for a
  malformed frame: 1002) names;
- the process stays alive and healthy, and its log shows no unhandled exception.

Frames go out on a bare TCP socket (`rawws.py`): no client library would send most of
them. Each frame is followed by a probe (`get_all_todos` with a request id of its own) in
the same write: the answers before the probe's are the frame's. Run time is bounded by
`max_examples` (about a minute on 2 cores); set `FUZZ_EXAMPLES_FACTOR` to run more.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ServiceProcess
from tests.todo.conftest import start_todo_service
from tests.todo.rawws import OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT, Frame, RawSocket, frame
from tests.todo.wsclient import Tokens, new_user_id, open_user_socket
from todo_ws_service.messages import REQUEST_ID_MAX, REQUEST_MODELS, server_message_adapter

MAX_MESSAGE = 65_536  # WS_MAX_MESSAGE's default
# What the server may close a fuzzed socket with: 1002 (RFC 6455: a malformed frame),
# 1007 (invalid UTF-8), 1009 (too big), 1011 (internal), 1013 (not reading).
CLOSE_CODES = {1002, 1007, 1009, 1011, 1013}
FACTOR = float(os.environ.get("FUZZ_EXAMPLES_FACTOR", "1"))


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=max(1, int(examples * FACTOR)),
        deadline=None,
        database=None,  # nothing written into the work tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------- the service and a session


@pytest.fixture(scope="module")
def server(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """SQLite, default limits except the rate limit (off: every frame gets a real answer)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    started = start_todo_service(
        jwt_env, f"sqlite://{tmp / 'todo.sqlite3'}", tmp, WS_RATE_LIMIT="0"
    )
    yield started
    started.stop()


@dataclass
class Outcome:
    """What the server did with one fuzzed frame."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None


class FuzzSession:
    """One user's raw socket, reopened whenever the server closes it."""

    def __init__(self, server: ServiceProcess, token: str) -> None:
        self.server = server
        self.token = token
        self.sock: RawSocket | None = None
        self.probes = 0

    async def socket(self) -> RawSocket:
        if self.sock is None:
            self.sock = await RawSocket.connect(self.server.port, self.token)
            first = await self.sock.recv_frame()
            check_message(first)
        return self.sock

    async def exchange(self, data: bytes, opcode: int = OP_TEXT) -> Outcome:
        """Send `data` as one frame, then a probe; the frame's answers, or the close."""
        sock = await self.socket()
        self.probes += 1
        probe_id = f"probe-{self.probes}"
        probe = orjson.dumps({"action": "get_all_todos", "request_id": probe_id})
        await sock.send_raw(frame(data, opcode) + frame(probe))
        outcome = Outcome()
        while True:
            received = await sock.recv_frame()
            if received.opcode == OP_CLOSE:
                outcome.close_code = received.close_code
                await self.reset()
                return outcome
            message = check_message(received)
            if message.get("request_id") == probe_id:
                return outcome
            outcome.answers.append(message)

    async def reset(self) -> None:
        if self.sock is not None:
            await self.sock.close()
            self.sock = None


@pytest.fixture(scope="module")
async def session(server: ServiceProcess, tokens: Tokens) -> Any:
    fuzzing = FuzzSession(server, tokens.valid(new_user_id(), ttl=3600))
    yield fuzzing
    await fuzzing.reset()


def check_message(received: Frame) -> dict[str, Any]:
    """A server frame: text, JSON, one of the contract's messages, never internal_error."""
    assert received.opcode == OP_TEXT, received
    message = orjson.loads(received.payload)
    server_message_adapter.validate_python(message)
    assert message.get("code") != "internal_error", message
    return dict(message)


def valid_request_id(message: object) -> str | None:
    if isinstance(message, dict):
        value = message.get("request_id")
        if isinstance(value, str) and len(value) <= REQUEST_ID_MAX:
            return value
    return None


def assert_one_answer(outcome: Outcome, sent: object = None) -> dict[str, Any]:
    """The frame was answered once, the socket is open, and its request_id came back."""
    assert outcome.close_code is None, outcome
    assert len(outcome.answers) == 1, outcome
    answer = outcome.answers[0]
    request_id = valid_request_id(sent)
    if request_id is not None and answer.get("code") != "invalid_message":
        assert answer.get("request_id") == request_id, (sent, answer)
    return answer


def assert_closed_or_answered(outcome: Outcome, size: int) -> None:
    if outcome.close_code is not None:
        assert outcome.close_code in CLOSE_CODES, outcome
        assert outcome.close_code != 1009 or size > MAX_MESSAGE, outcome
    else:
        assert size <= MAX_MESSAGE and len(outcome.answers) == 1, outcome


# ---------------------------------------------------------------- strategies

huge_ints = st.integers(min_value=-(10**30), max_value=10**30) | st.sampled_from(
    [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
)
json_leaves = (
    st.none()
    | st.booleans()
    | huge_ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=60)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)
odd_values = json_values | st.sampled_from(["5", "", "x" * 300, [], {}, 1.5, True, False])
payloads = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(max_size=260) | odd_values,
        "description": st.none() | st.text(max_size=2100) | odd_values,
        "completed": st.booleans() | odd_values,
        "token": st.text(max_size=100) | odd_values,
        "owner_id": odd_values,
        "extra": odd_values,
    },
)
envelopes = st.fixed_dictionaries(
    {"action": st.sampled_from(list(REQUEST_MODELS)) | odd_values},
    optional={
        "todo_id": st.integers(min_value=1, max_value=50) | odd_values,
        "payload": payloads | odd_values,
        "request_id": st.text(max_size=80) | odd_values,
        "if_version": st.integers(min_value=1, max_value=3) | odd_values,
        "idempotency_key": st.text(max_size=80) | odd_values,
        "since": st.integers(min_value=0, max_value=50) | odd_values,
    },
)


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encoded(value: object) -> bytes:
    """JSON as a client may send it: any int, and unicode unescaped."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- the properties


@fuzz(1000)
@given(value=json_values)
async def test_random_json(session: FuzzSession, value: object) -> None:
    data = encoded(value)
    outcome = await session.exchange(data)
    if not is_utf8(data):  # a lone surrogate
        assert outcome.close_code == 1007
        return
    answer = assert_one_answer(outcome, value)
    if not isinstance(value, dict):
        assert answer["code"] == "invalid_json", answer


@fuzz(1500)
@given(message=envelopes)
async def test_protocol_shaped_messages_with_wrong_types(
    session: FuzzSession, message: dict[str, Any]
) -> None:
    data = encoded(message)
    outcome = await session.exchange(data)
    if not is_utf8(data):
        assert outcome.close_code == 1007
        return
    assert_closed_or_answered(outcome, len(data))
    if outcome.close_code is None:
        assert_one_answer(outcome, message)


@fuzz(200)
@given(depth=st.integers(min_value=1, max_value=40_000), opener=st.sampled_from(["[", '{"a":']))
async def test_deep_nesting(session: FuzzSession, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    data = (opener * depth + "1" + closer * depth).encode()
    outcome = await session.exchange(data)
    assert_closed_or_answered(outcome, len(data))
    if outcome.close_code is None:
        assert outcome.answers[0]["code"] in {"invalid_json", "invalid_message"}


@fuzz(400)
@given(
    number=st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from(["1e400", "-1e400", "1e-400", "0.0", "-0", "1E2", "2.5e3"]),
    slot=st.sampled_from(["todo_id", "if_version", "since", "title", "completed"]),
    action=st.sampled_from(["update_todo", "delete_todo", "sync", "create_todo"]),
)
async def test_huge_numbers(
    session: FuzzSession, number: int | str, slot: str, action: str
) -> None:
    value = str(number)
    if slot in {"title", "completed"}:
        text = f'{{"action":"{action}","todo_id":1,"payload":{{"{slot}":{value}}}}}'
    else:
        text = f'{{"action":"{action}","{slot}":{value},"payload":{{"title":"n"}}}}'
    outcome = await session.exchange(text.encode())
    assert_closed_or_answered(outcome, len(text))


@fuzz(600)
@given(data=st.binary(max_size=3000) | json_values.map(encoded) | envelopes.map(encoded))
async def test_binary_frames(session: FuzzSession, data: bytes) -> None:
    outcome = await session.exchange(data, OP_BINARY)
    assert_closed_or_answered(outcome, len(data))


@fuzz(600)
@given(data=st.binary(max_size=3000))
async def test_text_frames_of_random_bytes(session: FuzzSession, data: bytes) -> None:
    outcome = await session.exchange(data)
    if is_utf8(data):
        assert_one_answer(outcome)
    else:
        assert outcome.close_code == 1007 and not outcome.answers, outcome


@fuzz(150)
@given(
    opcode=st.integers(min_value=0, max_value=15).filter(lambda op: op != OP_CLOSE),
    fin=st.booleans(),
    payload=st.binary(max_size=300),
)
async def test_random_frames(session: FuzzSession, opcode: int, fin: bool, payload: bytes) -> None:
    """Reserved opcodes, stray continuations, unfinished messages, control frames."""
    sock = await session.socket()
    await sock.send_raw(frame(payload, opcode, fin))
    try:
        while True:
            received = await sock.recv_frame(timeout=0.3)
            if received.opcode == OP_CLOSE:
                assert received.close_code in CLOSE_CODES, received
                break
            if received.opcode != OP_PONG:  # the answer to a ping
                check_message(received)
    except TimeoutError:
        pass  # nothing to say, or waiting for the rest of a message
    await session.reset()


@fuzz(60)
@given(garbage=st.binary(min_size=1, max_size=400))
async def test_raw_garbage_after_the_handshake(
    server: ServiceProcess, tokens: Tokens, garbage: bytes
) -> None:
    sock = await RawSocket.connect(server.port, tokens.valid(new_user_id()))
    try:
        check_message(await sock.recv_frame())
        await sock.send_raw(garbage)
        while True:
            received = await sock.recv_frame(timeout=0.3)
            if received.opcode == OP_CLOSE:
                assert received.close_code in CLOSE_CODES, received
                break
            if received.opcode != OP_PONG:  # the answer to a ping
                check_message(received)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass  # waiting for the rest of a frame, or the connection dropped
    finally:
        await sock.close()


async def test_the_service_survived_it_all(server: ServiceProcess, tokens: Tokens) -> None:
    """Last in the module: the process is alive, healthy, serving, and logged no
    unhandled exception."""
    assert server.proc is not None and server.proc.poll() is None
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    sock = await open_user_socket(server, tokens, new_user_id())
    await sock.expect_nothing_pending()
    await sock.close()
    log = server.log_path.read_text(errors="replace")
    for sign in ("Traceback", "exception was never retrieved", "internal_error"):
        assert sign not in log, f"{sign!r} in the service's log"
