"""Request ids: the client's `X-Request-ID` when it is a plain short token, else our own.

Sanic takes any `X-Request-ID` as the request id (and turns it into a UUID or an int when
it can). An id ends up in response headers, in every log line of the request and, through
the gateway, in the upstream's request: a client's id of any content and length would be
echoed, logged and forwarded as is. `ServiceRequest.id` keeps it only when it is 1-64
chars of `[A-Za-z0-9._-]`, exactly as sent; otherwise the service makes a UUID and the
client's value goes nowhere.
"""

from __future__ import annotations

import re
import uuid

from sanic import Request

REQUEST_ID_HEADER = "x-request-id"
_USABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_usable_request_id(value: str | None) -> bool:
    """True when a client's `X-Request-ID` may be used as is."""
    return value is not None and _USABLE_REQUEST_ID.fullmatch(value) is not None


class ServiceRequest(Request):
    """Sanic's request with a request id that is always safe to echo, log and forward."""

    __slots__ = ()

    @property
    def id(self) -> str:
        if not self._id:
            sent = self.headers.getone(REQUEST_ID_HEADER, None)
            self._id = sent if is_usable_request_id(sent) else str(uuid.uuid4())
        return str(self._id)
