"""The web client's files from `gateway/static/`, served at `/`.

Only the files found there at start-up are served, each by its exact name: no request
path is ever turned into a filesystem path, so odd paths (`/index.html%00.js`, `..`,
control bytes) are simply not one of those names and get 404.

Every file is sent with `Cache-Control: no-cache` and `Last-Modified`: a browser keeps
its copy but asks again each time, and gets a bodiless 304 while the file is unchanged.
The file names carry no content hash, so a longer max-age could pair a new page with an
old script after an upgrade.

The page loads only its own files (no inline script or style, nothing from another host)
and talks only to its own origin (REST and the WebSocket), so the Content-Security-Policy
allows `'self'` and nothing else; in CSP 3 `connect-src 'self'` covers ws:/wss: to the
same host.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, file

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def list_static_files(directory: Path) -> dict[str, Path]:
    """Each servable file of `directory` by its URL name (`app.js`, `sub/x.css`)."""
    return {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def add_static_routes(app: Sanic, directory: Path = STATIC_DIR) -> None:
    """Serve the files of `directory` at `/`, `index.html` for `/`."""
    files = list_static_files(directory)

    async def serve_static_file(request: Request, name: str = INDEX) -> HTTPResponse:
        location = files.get(name)
        if location is None:
            raise NotFound("File not found")
        # Answers 304 itself when If-Modified-Since shows the client's copy is current.
        response = await file(location, request_headers=request.headers)
        response.headers.update(SECURITY_HEADERS)
        return response

    methods = ["GET", "HEAD"]
    app.add_route(serve_static_file, "/", methods=methods, name="web_client_index")
    app.add_route(serve_static_file, "/<name:path>", methods=methods, name="web_client")
