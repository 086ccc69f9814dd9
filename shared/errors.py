"""The JSON error shape every service answers with: `{"detail", "code"}` (+ `errors`).

    SanicException
     └── ApiError                    any error we raise on purpose; carries `code`
          ├── ValidationFailed       422 validation_error, with per-field `errors`
          └── (service-specific subclasses: UsernameTaken, InvalidCredentials, ...)

`JsonErrorHandler` turns these, Sanic's own 404/405/413..., and any unexpected exception
(500 internal_error, logged, never sent) into that shape. No HTML page, no traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

logger = logging.getLogger("shared.errors")

# Codes for Sanic's built-in exceptions, by status.
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    422: "validation_error",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "service_unavailable",
}


class ApiError(SanicException):
    """An error with a machine-readable `code`, sent to the client as is."""

    status_code = 400
    code = "bad_request"
    quiet = True

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            detail or self.__class__.__doc__ or "error",
            status_code=status_code or self.status_code,
            headers=headers,
        )
        if code:
            self.code = code


class ValidationFailed(ApiError):
    """The request body is not valid."""

    status_code = 422
    code = "validation_error"

    def __init__(self, errors: list[dict[str, str]], detail: str = "Validation failed") -> None:
        super().__init__(detail)
        self.errors = errors


def error_body(
    detail: str, code: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    return body


class JsonErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, ApiError):
            errors = getattr(exception, "errors", None)
            body = error_body(str(exception), exception.code, errors)
            return json(body, status=exception.status_code, headers=exception.headers)
        if isinstance(exception, SanicException) and exception.status_code < 500:
            status = exception.status_code
            code = _CODE_BY_STATUS.get(status, "error")
            return json(error_body(str(exception), code), status=status, headers=exception.headers)
        # Anything else is our bug or an outage: log the detail, send nothing of it.
        self.log(request, exception)
        status = getattr(exception, "status_code", 500)
        if status == 503:
            return json(error_body("Service unavailable", "service_unavailable"), status=503)
        return json(error_body("Internal server error", "internal_error"), status=500)


def install_error_handler(app: Sanic) -> None:
    app.error_handler = JsonErrorHandler()
