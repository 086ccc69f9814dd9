"""Cross-origin requests (CORS) from `CORS_ORIGINS`: sanic-ext's CORS, set up the same way
on every service and on the gateway.

- `CORS_ORIGINS` empty (the default): same origin only. No CORS header is ever sent, so a
  browser refuses a page of another origin any answer; a preflight gets none either.
- A list of origins: a request whose `Origin` is one of them gets
  `Access-Control-Allow-Origin: <that origin>` (and `Vary: Origin`) on every answer,
  errors included, and `Access-Control-Expose-Headers: X-Request-ID, Retry-After`. A
  preflight (`OPTIONS` with `Access-Control-Request-Method`) gets 204 with
  `Access-Control-Allow-Methods` (the route's own methods), `Access-Control-Allow-Headers`
  (those asked for among `Authorization`, `Content-Type`, `X-Request-ID`) and
  `Access-Control-Max-Age`. Any other origin gets no CORS header at all.
- `*`: any origin: every answer carries `Access-Control-Allow-Origin: *`.

No credentials mode: the API authenticates with bearer tokens, never cookies, so
`Access-Control-Allow-Credentials` is not sent (a page calls `fetch` without
`credentials: "include"`). `Authorization` must still be allowed by name: the `*`
wildcard of `Access-Control-Allow-Headers` never covers it.

The gateway answers every preflight itself (`install_gateway_cors`) rather than
forwarding it, and drops the services' own `Access-Control-*` headers from proxied
answers, so one policy (the gateway's) holds for everything a browser reaches through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sanic import Request, Sanic
from sanic.response import HTTPResponse, empty

ANY_ORIGIN = "*"
ALLOW_HEADERS = ("authorization", "content-type", "x-request-id")
# Readable by a page of another origin besides the CORS-safelisted ones: the request id
# (for bug reports) and how long to wait after a 429 or 503.
EXPOSE_HEADERS = ("x-request-id", "retry-after")
# How long a browser may reuse a preflight's answer (Chromium caps it at 7200 s).
MAX_AGE_SECONDS = 600

_SCHEME = r"[a-z][a-z0-9+.-]*"
_HOST = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])"
_ORIGIN = re.compile(rf"^(?P<scheme>{_SCHEME})://(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?$")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_origin(entry: str) -> str:
    """One `CORS_ORIGINS` entry as a browser sends it in `Origin`, or ValueError.

    An origin is `scheme://host[:port]` and nothing else. Browsers send scheme and host
    in lower case and leave out a default port, and the match is exact, so an entry that
    could never match (a path, a trailing `/`, `:443` on https, `*.example.com`) is an
    error at start-up rather than a silent mismatch later.
    """
    entry = entry.strip()
    value = entry.lower()
    match = _ORIGIN.match(value)
    if match is None:
        if "*" in value:
            raise ValueError(f"{entry!r}: wildcards inside an origin are not supported")
        if value == "null":
            raise ValueError("'null' (sandboxed and file: pages) is not an allowed origin")
        if re.match(rf"^{_SCHEME}://[^/]+/", value):
            raise ValueError(f"{entry!r}: an origin has no path (drop the trailing part)")
        raise ValueError(f"{entry!r} is not an origin (scheme://host[:port])")
    port = match["port"]
    if port is not None:
        if not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r}: port out of range")
        if _DEFAULT_PORTS.get(match["scheme"]) == port:
            raise ValueError(f"{entry!r}: leave out the default port, as browsers do")
    return value


def parse_origins(value: object) -> list[str]:
    """`CORS_ORIGINS` (comma-separated, or a list) as a list; `[]` = same origin only."""
    if isinstance(value, str):
        entries = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        entries = [str(part) for part in value]
    else:
        raise ValueError("expected a comma-separated list of origins")
    if any(entry.strip() == ANY_ORIGIN for entry in entries):
        if len(entries) > 1:
            raise ValueError("'*' (any origin) cannot be combined with other origins")
        return [ANY_ORIGIN]
    origins: list[str] = []
    for entry in entries:
        origin = parse_origin(entry)
        if origin not in origins:
            origins.append(origin)
    return origins


def cors_config(origins: Iterable[str]) -> dict[str, object]:
    """sanic-ext's settings for `origins` (its CORS is off when there are none)."""
    origins = list(origins)
    return {
        "CORS": bool(origins),
        "CORS_ORIGINS": ",".join(origins),
        "CORS_SEND_WILDCARD": origins == [ANY_ORIGIN],
        "CORS_ALLOW_HEADERS": ",".join(ALLOW_HEADERS),
        "CORS_EXPOSE_HEADERS": ",".join(EXPOSE_HEADERS),
        "CORS_MAX_AGE": MAX_AGE_SECONDS,
        "CORS_SUPPORTS_CREDENTIALS": False,
        # A list: only answers to a request with an allowed `Origin` carry CORS headers.
        # `*`: every answer does, the same for everyone (so no `Vary: Origin` needed).
        "CORS_ALWAYS_SEND": origins == [ANY_ORIGIN],
        "CORS_AUTOMATIC_OPTIONS": True,
    }


def is_preflight(request: Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "origin" in request.headers
        and "access-control-request-method" in request.headers
    )


def _add_vary_origin(response: HTTPResponse) -> None:
    vary = response.headers.get("vary", "")
    names = {name.strip().lower() for name in vary.split(",")}
    if "origin" not in names and "*" not in names:
        response.headers["vary"] = f"{vary}, Origin" if vary.strip() else "Origin"


def install_cors(app: Sanic, origins: list[str]) -> None:
    """Configure sanic-ext's CORS on an app (before anything touches `app.ext`).

    Every app gets this from `new_service_app`; the gateway, which does not load sanic-ext
    by itself, also needs `install_gateway_cors`.
    """
    app.config.update(cors_config(origins))
    if not origins or origins == [ANY_ORIGIN]:
        return

    # sanic-ext adds `Vary: Origin` only to answers it allowed; an answer refused to one
    # origin must not be served from a cache to another, so every answer varies by it.
    @app.on_response(priority=-1000)
    async def vary_by_origin(request: Request, response: HTTPResponse) -> None:
        _add_vary_origin(response)


def install_gateway_cors(app: Sanic, origins: list[str]) -> None:
    """CORS on the gateway, whose catch-all proxy routes rule out sanic-ext's full set.

    Only sanic-ext's HTTP extension is started (no docs, no automatic HEAD), and
    preflights are answered here: forwarding them would make the services' settings,
    not the gateway's, decide what a browser may do through the gateway.
    """
    if not origins:
        return
    from sanic_ext import Extend
    from sanic_ext.extensions.http.extension import HTTPExtension

    app.config.update(cors_config(origins))  # done by new_service_app too; harmless twice
    app.config.HTTP_AUTO_HEAD = False
    app.config.HTTP_AUTO_OPTIONS = True  # sanic-ext's preflight handling needs it
    Extend(app, extensions=[HTTPExtension], built_in_extensions=False)

    @app.on_request
    async def answer_preflight(request: Request) -> HTTPResponse | None:
        # sanic-ext's response middleware then adds the CORS headers (or none).
        return empty() if is_preflight(request) else None
