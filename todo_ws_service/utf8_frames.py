"""Text frames that are not valid UTF-8: close 1007 (RFC 6455 section 8.1), in turn.

Sanic's frame assembler decodes a text frame as it arrives, in a task of its own. Invalid
UTF-8 raises `UnicodeDecodeError` there: the frame, and any after it in the same read, are
lost without a word and the socket stays open. `check_utf8` gives a socket an assembler
that hands the receive loop `INVALID_UTF8` in the bad frame's place instead. Frames before
it are answered first, in order; the loop then closes with 1007 (`connection.py`).
"""

from __future__ import annotations

import codecs
from typing import Final

from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame

CLOSE_INVALID_DATA = 1007
# A lone surrogate: no text frame can decode to it, and it is not JSON (so the receive
# loop meets it only on its error paths, never on the hot path).
INVALID_UTF8: Final = "\ud800 invalid UTF-8"


class Utf8CheckingAssembler(WebsocketFrameAssembler):
    """Sanic's assembler, with invalid UTF-8 delivered as the message `INVALID_UTF8`."""

    __slots__ = ()  # the same layout as its base, so a live assembler can become one

    async def put(self, frame: Frame) -> None:
        try:
            await super().put(frame)
        except UnicodeDecodeError:
            await self._put_invalid()

    async def _put_invalid(self) -> None:
        # What `put` does with a final frame, with the marker as the message's text.
        async with self.write_mutex:
            self.chunks = [INVALID_UTF8]
            self.decoder = codecs.getincrementaldecoder("utf-8")()  # `get` joins as text
            if not self.get_in_progress:
                self.paused = self.protocol.pause_frames()
            self.message_complete.set()
            await self.message_fetched.wait()
            self.message_fetched.clear()
            self.decoder = None


def check_utf8(ws: WebsocketImplProtocol) -> None:
    """Make `ws` report invalid UTF-8 as `INVALID_UTF8` (keeping any frame it holds)."""
    ws.assembler.__class__ = Utf8CheckingAssembler
