"""The tunnel's frame-boundary rule, against frames made by the websockets library."""

from __future__ import annotations

import random

import pytest
from websockets.frames import Close, Frame, Opcode

from gateway.ws_tunnel_frames import close_frame, walk_frame_headers


def server_frame(opcode: Opcode, payload: bytes) -> bytes:
    """A frame as a server sends it (unmasked), serialized by websockets."""
    return Frame(opcode, payload).serialize(mask=False, extensions=[])


def follow(chunks: list[bytes]) -> tuple[int, bytes, bool]:
    """Feed `chunks` the way the tunnel does; its state after the last one."""
    to_skip, partial, saw_close = 0, b"", False
    for chunk in chunks:
        if to_skip >= len(chunk):
            to_skip -= len(chunk)
            continue
        data, start = (partial + chunk, 0) if partial else (chunk, to_skip)
        to_skip, partial, closed = walk_frame_headers(data, start)
        saw_close = saw_close or closed
    return to_skip, partial, saw_close


# Lengths on each side of the 7-bit, 16-bit and 64-bit length encodings.
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("size", SIZES)
def test_a_whole_frame_ends_between_frames(size: int) -> None:
    assert follow([server_frame(Opcode.TEXT, b"x" * size)]) == (0, b"", False)


def test_any_cut_of_a_stream_of_frames_is_followed_exactly() -> None:
    rng = random.Random(7)
    frames = [server_frame(Opcode.BINARY, b"y" * rng.choice(SIZES)) for _ in range(40)]
    stream = b"".join(frames)
    ends = set()
    position = 0
    for frame in frames:
        position += len(frame)
        ends.add(position)
    for _ in range(50):
        cut = sorted(rng.sample(range(1, len(stream)), 30))
        chunks = [stream[a:b] for a, b in zip([0, *cut], [*cut, len(stream)], strict=True)]
        for count in range(1, len(chunks) + 1):
            to_skip, partial, _ = follow(chunks[:count])
            consumed = sum(len(c) for c in chunks[:count])
            between = to_skip == 0 and not partial
            assert between == (consumed in ends), (consumed, to_skip, partial)


def test_a_header_cut_after_one_byte_is_kept_for_the_next_chunk() -> None:
    frame = server_frame(Opcode.TEXT, b"z" * 300)  # a 4-byte header
    assert follow([frame[:1]]) == (0, frame[:1], False)
    assert follow([frame[:3]]) == (0, frame[:3], False)
    assert follow([frame[:3], frame[3:]]) == (0, b"", False)


def test_a_close_frame_is_noticed() -> None:
    text = server_frame(Opcode.TEXT, b"bye")
    close = Close(1000, "done").serialize()
    assert follow([text + server_frame(Opcode.CLOSE, close)])[2] is True
    assert follow([text, text])[2] is False


@pytest.mark.parametrize(("code", "reason"), [(1014, "bad gateway"), (1001, "")])
def test_the_gateways_close_frames_are_what_websockets_would_send(code: int, reason: str) -> None:
    assert close_frame(code, reason) == server_frame(Opcode.CLOSE, Close(code, reason).serialize())
