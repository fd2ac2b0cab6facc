"""RFC 9457 problem+json errors, each also carrying `"success": false`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):  # noqa: N818 - the RFC's own name for it
    """An error the API answers with a problem+json body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra


def too_many_failures(wait: int) -> Problem:
    """The 429 an address gets after too many failed authentications."""
    return Problem(
        429,
        f"too many failed authentications from this address; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} not found")


def invalid(field: str, message: str) -> Problem:
    return invalid_fields([{"field": field, "message": message}])


def invalid_fields(errors: list[dict[str, str]]) -> Problem:
    """The 422 for every field at fault, worded as request validation words its own."""
    return Problem(422, joined_detail(errors), errors=errors)


def joined_detail(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{error['field']}: {error['message']}" for error in errors)


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "success": False,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["requestId"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(
    app: FastAPI,
    *,
    on_unauthorized: Callable[[Request], Awaitable[int | None]] | None = None,
    refusal: Callable[[Request], Awaitable[Problem | None]] | None = None,
) -> None:
    """Map every error the API can raise to a problem+json response.

    `on_unauthorized` counts a failed authentication; when it answers a number of seconds,
    the client has failed too often and gets 429 with that Retry-After instead of 401.
    `refusal` answers the 401 a request's credential deserves when it was not checked yet
    (a hot read refusing its parameters before its statements ran): that 401 comes first.
    """

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        if exc.status != 401 and refusal is not None:
            exc = await refusal(request) or exc
        if exc.status == 401 and on_unauthorized is not None:
            wait = await on_unauthorized(request)
            if wait is not None:
                exc = too_many_failures(wait)
        return problem_response(
            request, exc.status, exc.detail, errors=exc.errors, headers=exc.headers, extra=exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = await refusal(request) if refusal is not None else None
        if refused is not None:
            return await on_problem(request, refused)
        errors = [
            {"field": _field_name(tuple(error.get("loc", ()))), "message": str(error["msg"])}
            for error in exc.errors()
        ]
        return problem_response(request, 422, joined_detail(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(StatementError)
    async def on_statement_error(request: Request, exc: StatementError) -> JSONResponse:
        # A value that passed validation but the database cannot take (invalid text, out of
        # range): the client's fault. Anything else a statement raised is a server error.
        if not isinstance(exc, DataError) and not isinstance(exc.orig, ValueError | OverflowError):
            return await on_crash(request, exc)
        log.warning(
            "value refused by the database",
            path=request.url.path,
            error_type=type(exc.orig).__name__,
        )
        return problem_response(
            request,
            422,
            "a value cannot be stored or compared",
            errors=[{"field": "body", "message": "a value cannot be stored or compared"}],
        )

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(request, 500, "internal error")


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "success"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "success": {"const": False},
        "requestId": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
ERROR_STATUSES = {
    "400": "Malformed request.",
    "401": "Missing, invalid or revoked credentials.",
    "403": "A limit this server sets for each user is reached.",
    "404": "Not found (another tenant's ids are not found either).",
    "409": "Conflicts with the record's state.",
    "413": "Request body too large.",
    "422": "Invalid input; `errors` names every field at fault and its rule, all at once.",
    "429": "Too many requests of this kind; `Retry-After` says when to try again.",
}


def declare(schema: dict[str, Any]) -> None:
    """Declare problem+json error responses on every operation of an OpenAPI document."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_STATUSES.items():
                responses[code] = {
                    "description": description,
                    "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
