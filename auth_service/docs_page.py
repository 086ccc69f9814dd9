"""`/auth/docs`: Swagger UI for the OpenAPI document, served whole by this service.

The page and every file it loads come from here: Swagger UI's own files from the pinned
`swagger-ui-py` package (never a CDN), and a small initializer script of ours (no inline
script), under a Content-Security-Policy that lets the page load nothing from elsewhere.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from sanic import Blueprint, Request
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse, file, html, raw

DOCS_PREFIX = "/auth/docs"
DOCUMENT_URL = "/auth/openapi.json"

# Swagger UI's stylesheet draws its icons as data: images; it needs nothing else (checked
# in Chromium: no violation while browsing and trying calls, tests/auth/test_docs_page.py).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

# The only files of the package served (it also ships an editor we don't want exposed).
ASSET_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
ASSET_MAX_AGE = 3600

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Auth service API</title>
  <link rel="stylesheet" href="{DOCS_PREFIX}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_PREFIX}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_PREFIX}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PREFIX}/swagger-initializer.js"></script>
</body>
</html>
"""

INITIALIZER = f"""window.ui = SwaggerUIBundle({{
  url: "{DOCUMENT_URL}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
}});
"""


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's files inside the installed package (not imported)."""
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_page_blueprint() -> Blueprint:
    bp = Blueprint("auth_docs_page", url_prefix=DOCS_PREFIX)
    assets = swagger_ui_dir()

    @bp.get("")
    async def docs_page(request: Request) -> HTTPResponse:
        return html(PAGE, headers=SECURITY_HEADERS)

    @bp.get("/swagger-initializer.js")
    async def docs_initializer(request: Request) -> HTTPResponse:
        return raw(
            INITIALIZER,
            content_type="text/javascript; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": f"max-age={ASSET_MAX_AGE}"},
        )

    @bp.get("/<name:str>")
    async def docs_asset(request: Request, name: str) -> HTTPResponse:
        if name not in ASSET_TYPES:
            raise NotFound(f"No such file: {DOCS_PREFIX}/{name}")
        return await file(
            assets / name,
            mime_type=ASSET_TYPES[name],
            headers=SECURITY_HEADERS,
            max_age=ASSET_MAX_AGE,
            request_headers=request.headers,
        )

    return bp
