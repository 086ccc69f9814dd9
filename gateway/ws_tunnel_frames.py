"""Just enough of RFC 6455 framing for the tunnel: where frames end, and close frames.

The tunnel copies bytes and never decodes a message. It does follow the *headers* of the
frames the upstream sends (2 to 14 bytes each, the payload is skipped unread), for one
reason: to know, when the upstream connection ends or the gateway shuts down, whether the
client's stream stands between two frames, where a close frame of the gateway's own
(1014, 1001) may be written. It also notes whether the upstream sent a close frame, which
tells a clean end from a lost connection.
"""

from __future__ import annotations

OPCODE_CLOSE = 0x8
_FIN_CLOSE = 0x80 | OPCODE_CLOSE
_MASKED = 0x80


def walk_frame_headers(data: bytes, start: int) -> tuple[int, bytes, bool]:
    """Follow the frames of `data` from `start`, where a frame header begins.

    Returns `(to_skip, partial_header, saw_close)`: the payload bytes of the last frame
    still to come after `data`, the bytes of a header cut off at the end of `data` (to be
    put in front of the next chunk), and whether a close frame began in `data`.
    """
    end = len(data)
    pos = start
    saw_close = False
    while pos < end:
        available = end - pos
        if available < 2:
            return 0, data[pos:], saw_close
        second = data[pos + 1]
        length = second & 0x7F
        header = 6 if second & _MASKED else 2
        if length == 126:
            header += 2
            if available < header:
                return 0, data[pos:], saw_close
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        elif length == 127:
            header += 8
            if available < header:
                return 0, data[pos:], saw_close
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
        elif available < header:
            return 0, data[pos:], saw_close
        if data[pos] & 0x0F == OPCODE_CLOSE:
            saw_close = True
        pos += header + length
    return pos - end, b"", saw_close


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with `code` and `reason`, as a server sends it (unmasked)."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return bytes([_FIN_CLOSE, len(payload)]) + payload
