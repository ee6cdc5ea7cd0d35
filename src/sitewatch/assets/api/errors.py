"""Error bodies: every refusal is a 4xx JSON ``{"detail": ...}`` in English and Chinese."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel


class ErrorOut(BaseModel):
    """A refusal: ``detail`` says why, in English then Chinese."""

    detail: str


def bilingual(en: str, zh: str) -> str:
    """One message in both languages."""
    return f"{en} / {zh}"


def not_found(what: str, what_zh: str, key: object) -> HTTPException:
    """404 for a resource that does not exist or that the token may not see."""
    return HTTPException(404, bilingual(f"{what} {key} not found", f"{what_zh} {key} 不存在或无权查看"))


def forbidden(en: str, zh: str) -> HTTPException:
    """403: authenticated, but not allowed to do this."""
    return HTTPException(403, bilingual(en, zh))


def invalid(field: str, en: str, zh: str) -> HTTPException:
    """422 in FastAPI's validation-error shape, for checks that need the database."""
    return HTTPException(422, [{"loc": ["body", field], "msg": bilingual(en, zh), "type": "value_error"}])


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be parsed"},
    401: {"model": ErrorOut, "description": "Missing or invalid token"},
    403: {"model": ErrorOut, "description": "The token's role or scope does not allow this"},
    404: {"model": ErrorOut, "description": "Not found, or not visible to this token"},
    409: {"model": ErrorOut, "description": "Conflicts with existing data (unique key)"},
}
