"""One error format for the whole web application, in the reader's language.

Every refusal is JSON ``{"status", "code", "detail", "errors"}``: ``code`` a stable word for
programs, ``detail`` one sentence for people in the request's language (zh_CN or en, through the
catalog), and ``errors`` one entry per field at fault, naming it and saying what to do, with the
offending value cut short. No answer carries database text or a stack trace. Routes raise
:class:`ApiError` (or use :func:`not_found`, :func:`forbidden`, :func:`conflict`, :func:`invalid`);
:func:`install` turns everything else (FastAPI's validation, routing's 404 and 405, database
conflicts, unexpected exceptions) into the same format.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException

from ..i18n import _, current_language

log = logging.getLogger(__name__)
ECHO_CHARS = 60  # an offending value is echoed at most this long
MAX_FIELD_ERRORS = 20  # and at most this many fields are listed


class ErrorCode(StrEnum):
    """What kind of refusal an answer is (stable, for programs)."""

    MALFORMED = "malformed"  # 400: the body is not JSON, or not strict JSON
    INVALID = "invalid"  # 422: a field is not acceptable
    UNAUTHORIZED = "unauthorized"  # 401: no token, or not a valid one
    FORBIDDEN = "forbidden"  # 403: the role does not allow this
    NOT_FOUND = "not_found"  # 404: no such thing, or not in the caller's scope
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    CONFLICT = "conflict"  # 409: clashes with existing data
    TOO_LARGE = "too_large"  # 413: the body is over the limit
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415
    UNAVAILABLE = "unavailable"  # 503: the database did not answer; retry
    INTERNAL = "internal"  # 500: a fault of ours; it is logged


class FieldError(BaseModel):
    """One field at fault: where, why (a stable word), what to do (a sentence), and its value cut
    to 60 characters (omitted for objects and lists)."""

    field: str
    code: str
    message: str
    input: str | int | float | bool | None = None


class ErrorBody(BaseModel):
    """Every error answer of the web application."""

    status: int
    code: ErrorCode
    detail: str
    errors: list[FieldError] = []


class ApiError(HTTPException):
    """A refusal with its status, code, sentence and field errors (an HTTPException, so FastAPI
    passes it on unchanged even while it reads the body)."""

    def __init__(
        self, status: int, code: ErrorCode, detail: str, errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(status, detail, headers)
        self.code = code
        self.errors = list(errors)

    def body(self) -> ErrorBody:
        """The JSON body of this refusal."""
        return ErrorBody(status=self.status_code, code=self.code, detail=self.detail, errors=self.errors)


def echo(value: Any) -> str | int | float | bool | None:
    """A value safe to echo in an error: JSON-encodable, finite, cut to ``ECHO_CHARS``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, int):
        return value if value.bit_length() < 64 else f"{str(value)[:ECHO_CHARS]}…"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "…"
    return None


def field_error(field: str, message: str, code: str = "invalid", value: Any = None) -> FieldError:
    """One field's fault, its value echoed safely."""
    return FieldError(field=field, code=code, message=message, input=echo(value))


def summary(errors: Sequence[FieldError]) -> str:
    """The ``detail`` sentence of a 422: the first fields and what is wrong with them."""
    shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
    if len(errors) <= 3:
        return shown
    return _("{shown}; and {more} more (see errors)", shown=shown, more=len(errors) - 3)


def invalid_fields(errors: Sequence[FieldError]) -> ApiError:
    """422 for fields at fault."""
    errors = list(errors)[:MAX_FIELD_ERRORS]
    return ApiError(422, ErrorCode.INVALID, summary(errors), errors)


def invalid(field: str, message: str, value: Any = None, code: str = "invalid") -> ApiError:
    """422 for one field at fault (a check that needs the database, e.g. an unknown reference)."""
    return invalid_fields([field_error(field, message, code, value)])


def not_found(what: str, key: object) -> ApiError:
    """404 for a thing that does not exist or that the caller may not see: the answer is the same,
    so it tells nothing about what lies outside the caller's scope."""
    return ApiError(
        404,
        ErrorCode.NOT_FOUND,
        _("{what} {key} not found (or not visible to your token)", what=what, key=echo(key)),
    )


def forbidden(detail: str) -> ApiError:
    """403: authenticated, but the role does not allow this."""
    return ApiError(403, ErrorCode.FORBIDDEN, detail)


def unauthorized(detail: str) -> ApiError:
    """401 with the ``WWW-Authenticate`` challenge."""
    return ApiError(401, ErrorCode.UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def conflict(detail: str, field: str | None = None, value: Any = None) -> ApiError:
    """409: clashes with existing data (a unique name, code or number)."""
    errors = [field_error(field, detail, "taken", value)] if field else []
    return ApiError(409, ErrorCode.CONFLICT, detail, errors)


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not (strict) JSON"},
    401: {"model": ErrorBody, "description": "Missing, unknown, expired or revoked token"},
    403: {"model": ErrorBody, "description": "The token's role does not allow this"},
    404: {"model": ErrorBody, "description": "Not found, or outside the token's scope"},
    409: {"model": ErrorBody, "description": "Conflicts with existing data"},
    413: {"model": ErrorBody, "description": "The body is larger than web.max_body_bytes"},
    422: {"model": ErrorBody, "description": "A field is not acceptable; errors name each one"},
}

PageRenderer = Callable[[Request, ErrorBody], Response]


def _status_error(status: int, request: Request, headers: Mapping[str, str] | None) -> ApiError:
    """The error of a bare status that routing or a library raised."""
    if status == 404:
        return ApiError(
            404, ErrorCode.NOT_FOUND, _("nothing here: check the address (the API is under /api/v1)")
        )
    if status == 405:
        allowed = (headers or {}).get("Allow", "")
        headers = dict(headers or {})
        return ApiError(405, ErrorCode.METHOD_NOT_ALLOWED,
                        _("{method} is not allowed here; allowed: {allowed}", method=request.method,
                          allowed=allowed or "-"), headers=headers)  # fmt: skip
    if status == 401:
        return unauthorized(_("send a token: Authorization: Bearer <token>"))
    if status == 415:
        return ApiError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, _("send the body as application/json"))
    if status == 400:
        return ApiError(400, ErrorCode.MALFORMED, _("the request could not be read; send a JSON object"))
    if status == 403:
        return forbidden(_("your token's role does not allow this"))
    return ApiError(status, ErrorCode.INTERNAL if status >= 500 else ErrorCode.INVALID,
                    _("the request was refused (HTTP {status})", status=status), headers=dict(headers or {}))  # fmt: skip


def render(request: Request, error: ApiError) -> Response:
    """The answer for ``error``: JSON, or the console's HTML page for a page request."""
    body = error.body()
    renderer: PageRenderer | None = getattr(request.app.state, "error_page", None)
    if renderer is not None and not request.url.path.startswith("/api/"):
        return renderer(request, body)
    headers = dict(error.headers or {})
    headers["Content-Language"] = current_language().replace("_", "-")
    return JSONResponse(body.model_dump(mode="json"), status_code=error.status_code, headers=headers)


def _unique_field(exc: IntegrityError) -> str | None:
    """The column a unique constraint names, without the database's wording (SQLite: ``UNIQUE
    constraint failed: assets.serial_no``; PostgreSQL: the constraint ``uq_assets_serial_no``)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None) if diag is not None else None
    text = str(orig)
    if name:
        table = getattr(diag, "table_name", None) or ""
        column = name.removeprefix(f"uq_{table}_") if table and name.startswith(f"uq_{table}_") else ""
        return column if column.isidentifier() else None
    if "UNIQUE constraint failed:" in text:
        column = text.split("UNIQUE constraint failed:", 1)[1].split(",")[0].strip().rpartition(".")[2]
        return column if column.isidentifier() else None
    return None


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` in the one format."""
    from .validation import translate

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return render(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return render(request, _status_error(exc.status_code, request, exc.headers))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, translate(exc.errors()))

    async def integrity_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IntegrityError)
        log.info("refused a write that conflicts with existing data: %s", str(exc.orig).splitlines()[0][:200])
        field = _unique_field(exc)
        detail = (
            _("{field}: this value is already taken; choose another", field=field) if field
            else _("this conflicts with existing data (a value that must be unique is taken, or a "
                   "referenced entry does not exist); check the fields and retry")
        )  # fmt: skip
        return render(request, conflict(detail, field))

    async def database_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DBAPIError)
        if isinstance(exc, OperationalError):
            log.warning("database unavailable: %s", str(exc.orig).splitlines()[0][:200])
            error = ApiError(503, ErrorCode.UNAVAILABLE, _("the database did not answer; retry in a moment"),
                             headers={"Retry-After": "5"})  # fmt: skip
        else:
            log.warning("database refused a value: %s", str(exc.orig).splitlines()[0][:200])
            error = ApiError(422, ErrorCode.INVALID,
                             _("the database refused a value (too long or out of range); check the fields"))  # fmt: skip
        return render(request, error)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return render(request, ApiError(500, ErrorCode.INTERNAL, _("internal error; it has been logged")))

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: api_error, HTTPException: http_error, RequestValidationError: validation_error,
        IntegrityError: integrity_error, DBAPIError: database_error, Exception: unexpected,
    }  # fmt: skip
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
