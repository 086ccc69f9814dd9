"""Reading request bodies into schema models, with the contract's 422 on any problem.

A body that is not JSON, not an object or breaks a field rule answers 422
`validation_error` with `errors` naming each field ("body" when it is the whole body).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError
from sanic import Request
from sanic.headers import parse_content_header
from sanic.request.form import parse_multipart_form

from auth_service.schemas import USERNAME_PATTERN
from shared.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _message(error: Any) -> str:
    """A short English message for one pydantic error (pydantic's own, tidied)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not an accepted field"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == USERNAME_PATTERN:
        return "may contain only letters, digits, '_', '.' and '-'"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind == "string_type":
        return "must be a string"
    return str(error["msg"])


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """`[{"field", "message"}]` for every problem pydantic found."""
    return [
        {"field": ".".join(str(part) for part in err["loc"]) or "body", "message": _message(err)}
        for err in exc.errors()
    ]


def parse_model(model: type[M], data: object) -> M:
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(validation_errors(exc)) from None


def json_object(request: Request) -> object:
    """The decoded JSON body, or 422 when it is empty or not JSON."""
    if not request.body:
        raise ValidationFailed([{"field": "body", "message": "a JSON object is required"}])
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ValidationFailed([{"field": "body", "message": "is not valid JSON"}]) from None


def parse_json(request: Request, model: type[M]) -> M:
    """Validate the JSON body of `request` as `model`."""
    return parse_model(model, json_object(request))


def _content_type(request: Request) -> tuple[str, dict[str, int | str]]:
    return parse_content_header(request.headers.get("content-type", ""))


def is_form(request: Request) -> bool:
    return _content_type(request)[0] in FORM_TYPES


def form_fields(request: Request) -> dict[str, str]:
    """A form body as a plain dict (the first value of each field); 422 if unreadable.

    Parsed here rather than through `request.form`, which logs a traceback at ERROR for
    every malformed body (no boundary, bad UTF-8, an unknown charset...), a cheap way to
    flood the logs, and then carries on with an empty form.
    """
    content_type, options = _content_type(request)
    try:
        if content_type == "multipart/form-data":
            boundary = str(options.get("boundary") or "")
            if not boundary:
                raise ValueError("no boundary")
            fields, _files = parse_multipart_form(request.body, boundary.encode())
        else:
            fields = parse_qs(request.body.decode("utf-8"))
    except Exception:  # any flaw of an untrusted body is the client's: 422, never a 500
        raise ValidationFailed([{"field": "body", "message": "is not a readable form"}]) from None
    return {name: values[0] for name, values in fields.items() if values}
