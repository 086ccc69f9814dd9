"""One socket's incoming messages: frames assembled, queued, read without a task each.

Sanic's own path costs, for every message: a task per TCP read (`data_received`), a lock and
a hand-off between that task and the reader (its frame assembler waits until each message
is fetched), and in `recv()` a lock, a future, a task and `asyncio.wait`. `Inbox` replaces
the socket's assembler and reading side:

- `data_received` hands the frames of a read straight to the inbox when that is all the
  read holds (text, binary and continuation frames, nothing to send back). Anything else
  (a ping to answer, a close, a frame too large) takes Sanic's path, as do the reads after
  it until it is done, so frames keep their order.
- The usual read, exactly one masked, final text frame of valid UTF-8 (a client's
  request), is unmasked and decoded here without websockets' parser, whose generators
  cost about a tenth of a message. Only while that parser waits between two frames with
  nothing buffered (it is then suspended in its reader's `at_eof`: checked, not assumed,
  so a websockets release that parses differently only turns this off), no fragmented
  message is under way, the socket is open and the frame is within the size limit.
  Anything else goes to the parser, which says what is wrong with it.
- A complete message goes on a queue; `receive()` returns the next one, waiting only when
  there is none. At `PAUSE_AT` queued messages the socket stops reading (TCP pushes back
  on the client) until the loop has taken half of them.
- A text frame that is not valid UTF-8 is queued as `INVALID_UTF8` (RFC 6455 section
  8.1): the receive loop answers the frames before it, then closes with 1007. Sanic's
  assembler would drop it, and any frame after it in the same read, without a word.
- A close frame, or the end of the TCP stream, ends `receive()` (it returns None) once the
  messages before it have been taken.
"""

from __future__ import annotations

import asyncio
import codecs
from collections import deque
from typing import Any, Final

from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

try:  # websockets' C helper (its wheels ship it); the pure-Python one otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

CLOSE_INVALID_DATA = 1007
# A lone surrogate: no text frame can decode to it, and it is not JSON (so the receive
# loop meets it only on its error paths, never on the hot path).
INVALID_UTF8: Final = "\ud800 invalid UTF-8"
# Queued messages at which the socket stops reading, until the loop has taken half.
PAUSE_AT = 8

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
_FIN_TEXT = 0x81  # FIN, no RSV bits (no extension is negotiated), opcode 1
_MASKED = 0x80
# Where websockets' parser waits when it stands between two frames with nothing buffered.
_BETWEEN_FRAMES = StreamReader.at_eof.__code__
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class Inbox:
    """The messages of one socket, in the order they came. Install with `Inbox.attach`."""

    __slots__ = (
        "_chunks",
        "_decoder",
        "_discarding",
        "_ended",
        "_max_size",
        "_messages",
        "_paused",
        "_slow_reads",
        "_waiter",
        "_ws",
    )

    def __init__(self, ws: WebsocketImplProtocol) -> None:
        self._ws = ws
        self._messages: deque[str | bytes] = deque()
        self._chunks: list[Any] = []  # the frames so far of a fragmented message
        self._decoder: codecs.IncrementalDecoder | None = None  # None: a binary message
        self._discarding = False  # the rest of a message found to be invalid UTF-8
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._paused = False
        self._slow_reads = 0  # reads on Sanic's path that are not processed yet
        sizes = (ws.ws_proto.max_message_size, ws.ws_proto.max_fragment_size)
        self._max_size = min((size for size in sizes if size is not None), default=1 << 62)

    @classmethod
    def attach(cls, ws: WebsocketImplProtocol) -> Inbox:
        """Take over `ws`'s incoming frames (before the handler's first await), keeping
        whatever Sanic's assembler already holds."""
        inbox = cls(ws)
        old = ws.assembler
        if old.chunks:
            text = old.decoder is not None
            if old.message_complete.is_set():
                joiner: Any = "" if text else b""
                inbox._messages.append(joiner.join(old.chunks))
                old.chunks = []
                old.message_complete.clear()
                old.message_fetched.set()  # lets Sanic's waiting `put` return
                if old.paused:
                    old.paused = False
                    ws.resume_frames()
            else:
                inbox._chunks, inbox._decoder = old.chunks, old.decoder
                old.chunks = []
        # Sanic's reading side calls `assembler.put(frame)` for each data frame and
        # `recv_cancel.cancel()` on a close frame or at the end of the stream.
        ws.assembler = inbox  # type: ignore[assignment]
        ws.recv_cancel = inbox  # type: ignore[assignment]
        ws.data_received = inbox._data_received  # type: ignore[method-assign]
        return inbox

    # ------------------------------------------------------------ reading

    async def receive(self) -> str | bytes | None:
        """The next message; None once the client closed (or the stream ended)."""
        messages = self._messages
        while not messages:
            if self._ended:
                return None
            if self._ws.ws_proto.state is State.CLOSED:
                raise WebsocketClosed("the socket is closed")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        message = messages.popleft()
        if self._paused and len(messages) <= PAUSE_AT // 2:
            self._paused = False
            self._ws.resume_frames()
        return message

    # ------------------------------------------------------------ what Sanic calls

    def cancel(self) -> None:
        """A close frame came, or the stream ended: no message follows."""
        self._ended = True
        self._wake()

    async def put(self, frame: Frame) -> None:
        """A data frame, from Sanic's path (the reads that hold more than data frames)."""
        self._put(frame)

    def _data_received(self, data: bytes) -> None:
        ws = self._ws
        if self._slow_reads:
            self._slow(data)
            return
        if self._take_text_frame(data):
            return
        proto = ws.ws_proto
        proto.receive_data(data)
        to_send = proto.data_to_send()
        events = proto.events_received()
        if to_send or not all(isinstance(e, Frame) and e.opcode in _DATA for e in events):
            self._slow(None, to_send, events)
            return
        for frame in events:
            self._put(frame)  # type: ignore[arg-type]

    def _take_text_frame(self, data: bytes) -> bool:
        """Queue `data` if it is exactly one masked, final text frame of valid UTF-8 that
        websockets' parser would take as it stands; False: the parser must see it."""
        size = len(data)
        if size < 6 or data[0] != _FIN_TEXT:
            return False
        second = data[1]
        length = second & 0x7F
        if not second & _MASKED or length == 127:
            return False
        header = 6
        if length == 126:
            header = 8
            length = int.from_bytes(data[2:4], "big")
        proto = self._ws.ws_proto
        if (
            header + length != size
            or length > self._max_size
            or proto.state is not State.OPEN
            or proto.current_size is not None  # a fragmented message is under way
            or proto.reader.buffer
            or not _between_frames(proto.parser)
        ):
            return False
        try:
            text = apply_mask(data[header:], data[header - 4 : header]).decode()
        except UnicodeDecodeError:
            return False  # the parser's path closes with 1007
        self._queue(text)
        return True

    def _slow(
        self,
        data: bytes | None,
        to_send: list[bytes] | None = None,
        events: list[Any] | None = None,
    ) -> None:
        """Sanic's path for this read (in a task); later reads wait their turn behind it."""
        if data is not None:
            # Behind another slow read: parse now, process in order after it.
            proto = self._ws.ws_proto
            proto.receive_data(data)
            to_send, events = proto.data_to_send(), proto.events_received()
        if not to_send and not events:
            return
        self._slow_reads += 1
        task = asyncio.get_running_loop().create_task(self._ws.async_data_received(to_send, events))
        task.add_done_callback(self._slow_done)

    def _slow_done(self, task: asyncio.Task[None]) -> None:
        self._slow_reads -= 1
        if not task.cancelled() and task.exception() is not None:
            task.exception()  # retrieved: Sanic's path logs nothing either

    def _put(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT:
            self._decoder = _Utf8Decoder(errors="strict")
            self._discarding = False
        elif opcode is Opcode.BINARY:
            self._decoder = None
            self._discarding = False
        elif opcode is not Opcode.CONT:
            return  # control frames are Sanic's business
        if self._discarding:
            return
        if self._decoder is None:
            data: str | bytes = bytes(frame.data)
        else:
            try:
                data = self._decoder.decode(frame.data, frame.fin)
            except UnicodeDecodeError:
                self._chunks = []
                self._discarding = not frame.fin
                self._queue(INVALID_UTF8)
                return
        if not frame.fin:
            self._chunks.append(data)
            return
        if self._chunks:
            self._chunks.append(data)
            joiner: Any = "" if self._decoder is not None else b""
            data = joiner.join(self._chunks)
            self._chunks = []
        self._queue(data)

    def _queue(self, message: str | bytes) -> None:
        self._messages.append(message)
        if len(self._messages) >= PAUSE_AT and not self._paused:
            self._paused = self._ws.pause_frames()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _between_frames(parser: Any) -> bool:
    """Whether websockets' parser (a chain of generators) waits for a frame's first byte."""
    waiting = parser
    while (inner := getattr(waiting, "gi_yieldfrom", None)) is not None:
        waiting = inner
    return getattr(waiting, "gi_code", None) is _BETWEEN_FRAMES
