"""Request heads: refuse malformed ones before Sanic's lenient parser reads them.

Sanic 25.12 splits each header line at its first colon and keeps whatever is around it:
`Content-Length : 5` becomes a header named `content-length ` (so the body is read as the
next request), and NUL, other control bytes or an obs-fold line (one starting with a space
or a tab) go through to the handlers. RFC 9112 says to reject such a head, and a proxy
must, or it forwards something the next hop reads differently. `CheckedHttp` answers each
with 400 and closes the connection (an error while reading a head always closes it).

    request-line = method SP request-target SP HTTP-version
    field-line   = field-name ":" field-value      (name: an RFC 9110 token;
                                                    value: printable ASCII and tab)

Header values must be ASCII: RFC 9110 tolerates other bytes ("obs-text") but no header of
this API needs them, and the gateway's HTTP and WebSocket clients refuse to send them on,
so they are answered 400 here rather than failing deeper down with a 500.
"""

from __future__ import annotations

import re
from typing import Protocol, cast

from sanic.exceptions import BadRequest
from sanic.http import Http

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = _TOKEN + rb" [^\x00-\x20\x7f]+ HTTP/[0-9]\.[0-9]"
_FIELD_LINE = _TOKEN + rb":[\t\x20-\x7e]*"
_WELL_FORMED_HEAD = re.compile(_REQUEST_LINE + rb"(?:\r\n" + _FIELD_LINE + rb")*")
_END_OF_HEAD = b"\r\n\r\n"


def is_well_formed_head(head: bytes | bytearray, end: int | None = None) -> bool:
    """True when `head[:end]` (the request line and header lines, CRLF-separated) is valid."""
    return _WELL_FORMED_HEAD.fullmatch(head, 0, len(head) if end is None else end) is not None


class HeadWatcher(Protocol):
    """What the connection is told about each head (the deadline lives there)."""

    def head_started(self) -> None: ...

    def head_finished(self) -> None: ...


class CheckedHttp(Http):
    """Sanic's HTTP/1.1 connection handler, refusing malformed heads and reporting each
    head's start and end to its protocol, which holds the head's deadline."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        watcher = cast(HeadWatcher, self.protocol)
        watcher.head_started()
        try:
            end = await self._receive_whole_head()
            if end is not None and not is_well_formed_head(self.recv_buffer, end):
                raise BadRequest("Malformed request head")
            await super().http1_request_header()
        finally:
            watcher.head_finished()

    async def _receive_whole_head(self) -> int | None:
        """Wait until the buffer holds the whole head; return where it ends, or None when
        it outgrows the size limit (Sanic's parser then answers 413 itself)."""
        buffer = self.recv_buffer
        searched_to = 0
        while (end := buffer.find(_END_OF_HEAD, searched_to)) == -1:
            searched_to = max(0, len(buffer) - 3)
            if searched_to >= self.HEADER_MAX_SIZE:
                return None
            await self._receive_more()
        return int(end)
