"""The OpenAPI document: served at `/auth/openapi.json`, browsable at `/auth/docs`.

Both live under `/auth` so that the gateway, which forwards `/auth/*`, serves them too.
sanic-ext leaves the routes under its own prefix out of the document, so its prefix is
`/auth/docs` (Swagger UI at `/auth/docs`, ReDoc at `/auth/docs/redoc`) and the JSON at
`/auth/openapi.json` is a route of ours that returns the same document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, json
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.definitions import Component

from auth_service import schemas

BEARER_SCHEME = "secured"


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
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.OAS_URI_TO_REDOC = "/redoc"
    app.config.OAS_URI_TO_SWAGGER = "/swagger"
    app.config.API_TITLE = "Auth service"
    app.config.API_VERSION = "1.0.0"
    app.config.API_DESCRIPTION = (
        "Accounts, logins with access JWTs and rotating refresh tokens. "
        "Every error is JSON `{detail, code}`; validation errors add `errors`."
    )
    app.ext.openapi.add_security_scheme(BEARER_SCHEME, "http", scheme="bearer", bearer_format="JWT")
    app.blueprint(openapi_json_blueprint())


def openapi_json_blueprint() -> Blueprint:
    bp = Blueprint("auth_openapi", url_prefix="/auth")

    @bp.get("/openapi.json")
    @openapi.exclude()
    async def openapi_document(request: Request) -> HTTPResponse:
        return json(SpecificationBuilder().build(request.app).serialize())

    return bp
