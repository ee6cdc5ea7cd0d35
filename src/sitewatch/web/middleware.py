"""What every request passes first: its language, the body size limit and strict JSON.

One pure ASGI middleware, so that it costs a route nothing it does not need and streams are cut
as soon as they pass the limit (a ``Content-Length`` over it is refused before a byte is read).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import i18n
from ..i18n import _
from .errors import ApiError, ErrorCode, FieldError, field_error, invalid_fields, render

LANGUAGE_COOKIE = "sitewatch_lang"  # set by the console's language switch; wins over Accept-Language
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_language(headers: Headers, default: str) -> str:
    """The language of a request: the language switch's cookie, else ``Accept-Language``, else
    ``default`` (the ``language`` setting)."""
    for part in headers.get("cookie", "").split(";"):
        name, _sep, value = part.strip().partition("=")
        if name == LANGUAGE_COOKIE:
            try:
                return i18n.normalize(value)
            except i18n.UnknownLanguage:
                break
    return i18n.negotiate(headers.get("accept-language"), default)


def too_large(limit: int) -> ApiError:
    """413 for a body over ``limit`` bytes."""
    return ApiError(413, ErrorCode.TOO_LARGE,
                    _("the body is larger than {limit} bytes; send less at once", limit=limit))  # fmt: skip


class _NonFinite:
    """A number strict JSON has no place for (NaN, Infinity, or beyond a double's range)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _non_finite(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    if isinstance(value, _NonFinite):
        yield ".".join(path) or "body", value.text
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, (*path, str(index)))


def check_json(body: bytes) -> ApiError | None:
    """None for a strict JSON body; else 422 naming each non-finite number's field, or 400."""
    try:
        orjson.loads(body)
        return None
    except orjson.JSONDecodeError as exc:
        position = _("line {line}, column {column}", line=exc.lineno, column=exc.colno)
    try:
        loose = json.loads(body, parse_constant=_NonFinite, parse_float=_float)
    except (ValueError, RecursionError):
        loose = None
    found = list(_non_finite(loose)) if loose is not None else []
    if found:
        errors: list[FieldError] = [
            field_error(path, _("must be a finite number: NaN, Infinity and numbers beyond ±1.7e308 are "
                                "not JSON numbers; send a number in range"), "non_finite", text)
            for path, text in found
        ]  # fmt: skip
        return invalid_fields(errors)
    return ApiError(400, ErrorCode.MALFORMED,
                    _("the body is not valid JSON (at {position}); send a JSON object encoded in UTF-8",
                      position=position))  # fmt: skip


class RequestGuard:
    """Sets the request's language, limits the body to ``max_body_bytes`` (413) and refuses a JSON
    body that is not strict JSON (400; a non-finite number: 422 naming its field)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, default_language: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        with i18n.using(request_language(headers, self.default_language)):
            if scope["method"] not in _BODY_METHODS:
                await self.app(scope, self._limited(receive), send)
                return
            error, body = await self._read(headers, receive)
            if error is None and body and self._is_json(headers):
                error = check_json(body)
            if error is not None:
                await render(Request(scope), error)(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)

    def _is_json(self, headers: Headers) -> bool:
        kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        return kind == "application/json" or kind.endswith("+json")

    async def _read(self, headers: Headers, receive: Receive) -> tuple[ApiError | None, bytes]:
        """The whole body, or 413 as soon as it passes the limit."""
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return too_large(self.max_body_bytes), b""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return too_large(self.max_body_bytes), b""
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return None, b"".join(chunks)

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that stops a body over the limit (a GET with a body, a stream)."""
        size = 0

        async def limited() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            return message

        return limited


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body on once, then listens for a disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
