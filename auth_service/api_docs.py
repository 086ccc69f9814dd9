"""The OpenAPI document: served at `/auth/openapi.json`, browsable at `/auth/docs`.

Both live under `/auth` so that the gateway, which forwards `/auth/*`, serves them too.
sanic-ext builds the document from the routes' decorators and leaves the routes under its
own prefix out of it, so its prefix is `/auth/docs`, where our Swagger UI page lives
(`docs_page.py`; sanic-ext's own pages, which load their scripts from CDNs, are off).

Building the document costs 20-30 ms of event loop, and anyone may ask for it: it is built
once per process and the same bytes are served every time (`OpenApiDocument`), also at
sanic-ext's own `/auth/docs/openapi.json`, which would otherwise rebuild it per call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from pydantic import BaseModel
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, empty, raw
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.definitions import Component

from auth_service import schemas
from auth_service.docs_page import docs_page_blueprint

logger = logging.getLogger("auth_service.api_docs")

BEARER_SCHEME = "secured"
# The name of sanic-ext's own route to the document (its blueprint "openapi", handler "spec").
SANIC_EXT_DOCUMENT_ROUTE = "openapi.spec"


def json_content(model: type[BaseModel], media_type: str = "application/json") -> dict[str, Any]:
    """Content map whose schema is a `$ref` to `model` under components/schemas."""
    return {media_type: Component(model)}


def error_response(status: int, description: str) -> Any:
    """`@openapi.response` for an error answered with the JSON error shape."""
    return openapi.response(status, json_content(schemas.ErrorBody), description)


def configure_openapi(app: Sanic) -> None:
    """Set sanic-ext's OpenAPI options; call before anything touches `app.ext`."""
    app.config.OAS_URL_PREFIX = "/auth/docs"
    app.config.OAS_URI_TO_JSON = "/openapi.json"
    # sanic-ext's pages load Swagger UI and ReDoc from CDNs, unpinned: ours is self-contained.
    app.config.OAS_UI_SWAGGER = False
    app.config.OAS_UI_REDOC = False
    app.config.OAS_UI_DEFAULT = None
    app.config.API_TITLE = "Auth service"
    app.config.API_VERSION = "1.0.0"
    app.config.API_DESCRIPTION = (
        "Accounts, logins with access JWTs and rotating refresh tokens. "
        "Every error is JSON `{detail, code}`; validation errors add `errors`."
    )
    app.ext.openapi.add_security_scheme(BEARER_SCHEME, "http", scheme="bearer", bearer_format="JWT")
    app.ctx.openapi_document = OpenApiDocument()
    app.blueprint(openapi_json_blueprint())
    app.blueprint(docs_page_blueprint())

    @app.after_server_start
    async def build_openapi_document(app: Sanic) -> None:
        app.ctx.openapi_document.build(app)  # now, rather than in the first request

    @app.on_request
    async def cached_document_for_sanic_ext_route(request: Request) -> HTTPResponse | None:
        if request.name == f"{request.app.name}.{SANIC_EXT_DOCUMENT_ROUTE}":
            return openapi_response(request)
        return None


class OpenApiDocument:
    """The serialized document and its ETag, built at most once per process."""

    def __init__(self) -> None:
        self._built: tuple[bytes, str] | None = None

    def build(self, app: Sanic) -> tuple[bytes, str]:
        if self._built is None:
            document = SpecificationBuilder().build(app).serialize()
            body = json.dumps(document, separators=(",", ":")).encode()
            self._built = body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            # Tests count this line: one per process, however many times the document is asked.
            logger.info("openapi document built", extra={"bytes": len(body)})
        return self._built


def openapi_response(request: Request) -> HTTPResponse:
    document: OpenApiDocument = request.app.ctx.openapi_document
    body, etag = document.build(request.app)
    if request.headers.get("if-none-match") == etag:
        return empty(status=304, headers={"ETag": etag})
    return raw(body, content_type="application/json", headers={"ETag": etag})


def openapi_json_blueprint() -> Blueprint:
    bp = Blueprint("auth_openapi", url_prefix="/auth")

    @bp.get("/openapi.json")
    @openapi.exclude()
    async def openapi_document(request: Request) -> HTTPResponse:
        return openapi_response(request)

    return bp
