"""The web client's files from `gateway/static/`, served at `/`.

Every file is sent with `Cache-Control: no-cache` and `Last-Modified`: a browser keeps
its copy but asks again each time, and gets a bodiless 304 while the file is unchanged.
The file names carry no content hash, so a longer max-age could pair a new page with an
old script after an upgrade.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
CACHE_CONTROL = "no-cache"


def add_static_routes(app: Sanic, directory: Path = STATIC_DIR) -> None:
    """Serve `directory` at `/`, `index.html` for `/`."""
    app.static("/", directory, index="index.html", name="web_client")

    @app.on_response
    async def revalidate_static_files(request: Request, response: HTTPResponse) -> None:
        if request.route is not None and request.route.name.endswith("web_client"):
            response.headers.setdefault("cache-control", CACHE_CONTROL)
