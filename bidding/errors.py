"""Domain errors carry their HTTP status; one handler turns each into {"type", "detail"}."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path


class DomainError(Exception):
    """A refusal the client should see: a status, a stable type and a human detail."""

    status_code = 400
    type = "bad_request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(DomainError):
    """400: the request is malformed."""


class Unauthorized(DomainError):
    """401: no valid credentials."""

    status_code = 401
    type = "unauthorized"


class Forbidden(DomainError):
    """403: authenticated, but not allowed."""

    status_code = 403
    type = "forbidden"


class NotFound(DomainError):
    """404: no such thing, or not visible to this caller."""

    status_code = 404
    type = "not_found"


class Conflict(DomainError):
    """409: the request conflicts with the current state."""

    status_code = 409
    type = "conflict"


class PayloadTooLarge(DomainError):
    """413: the body is larger than allowed."""

    status_code = 413
    type = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """415: the body is not of a type this endpoint takes."""

    status_code = 415
    type = "unsupported_media_type"


class Unprocessable(DomainError):
    """422: well-formed, but the content is refused."""

    status_code = 422
    type = "unprocessable"


class TooManyRequests(DomainError):
    """429: slow down."""

    status_code = 429
    type = "too_many_requests"


class InvalidInput(Unprocessable):
    """422: a value the request's schema allows but the service refuses, named like the
    schema's own refusals."""

    type = "validation_error"


class EditedConcurrently(Conflict):
    """409: somebody else changed the same thing meanwhile; read it again and retry."""

    type = "edited_concurrently"


class BodyRefused(StarletteHTTPException):
    """A body refused while it is read (too large, a bad length). FastAPI lets only HTTP
    exceptions through its body parsing, so this is one, answered in the usual shape."""

    status_code = 400
    type = "bad_request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(self.status_code, detail)
        self.extra = extra


_HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
}


class ErrorBody(BaseModel):
    """Every error: a stable machine-readable type and a human detail, sometimes more fields."""

    model_config = ConfigDict(extra="allow")

    type: str
    detail: str


# Declared on every route, so that the OpenAPI document shows the real error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Not signed in, or the token is invalid",
        403: "Not allowed",
        404: "No such thing, or not visible to you",
        409: "Conflicts with the current state",
        413: "The body is too large",
        415: "Unsupported body type",
        422: "Invalid content; `errors` lists each field",
        429: "Too many requests; see Retry-After",
    }.items()
}


def error_body(type: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The one JSON shape of every error."""
    return {"type": type, "detail": detail, **extra}


def _allow(request: Request, exc: StarletteHTTPException) -> Mapping[str, str] | None:
    """The exception's headers; for a 405, with every method the path has in `Allow`
    (Starlette names those of the first route on the path only: GET, not also PATCH)."""
    if exc.status_code != 405:
        return exc.headers
    path = request.scope.get("path", "")
    methods = {
        method.upper()
        for template, operations in request.app.openapi().get("paths", {}).items()
        if compile_path(template)[0].match(path)
        for method in operations
    }
    if not methods:
        return exc.headers
    if "GET" in methods:
        methods.add("HEAD")
    return {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}


def install_error_handlers(
    app: FastAPI, *, headers_of_500: Mapping[str, str] | None = None
) -> None:
    """Route every error the app can raise through the one JSON shape.

    A 500 is answered outside every middleware: `headers_of_500` are what it must carry.
    """

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        headers = {}
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        body = error_body(exc.type, exc.detail, **exc.extra)
        return JSONResponse(jsonable_encoder(body), status_code=exc.status_code, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # At most 50: a body of 60 000 unknown fields took 2 s to answer, 4 MB long.
        errors = [
            {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]}
            for e in exc.errors()[:50]
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        detail = f"{first['field']}: {first['message']}"
        body = error_body("validation_error", detail, errors=errors)
        return JSONResponse(jsonable_encoder(body), status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, BodyRefused):
            body = error_body(exc.type, exc.detail, **exc.extra)
        else:
            body = error_body(_HTTP_TYPES.get(exc.status_code, "error"), str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=_allow(request, exc))

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # The exception itself is logged by the server; the client learns nothing of it.
        return JSONResponse(
            error_body("internal_error", "the server failed; try again later"),
            status_code=500,
            headers=dict(headers_of_500 or {}),
        )

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
