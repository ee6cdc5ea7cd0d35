"""Query helpers shared by the routes: pagination and visible-or-404 loading."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from ..models import Base
from .errors import not_found

M = TypeVar("M", bound=Base)


def paginate(session: Session, stmt: Select[Any], limit: int, offset: int) -> dict[str, Any]:
    """``{total, limit, offset, items}`` of ``stmt`` (items are ORM objects, ordered by the caller)."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(limit).offset(offset)))
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def get_visible(
    session: Session, model: type[M], ident: int, visible: ColumnElement[bool], what: tuple[str, str]
) -> M:
    """The row with this id if the caller may see it; 404 otherwise."""
    row = session.scalars(select(model).where(model.id == ident, visible)).first()  # type: ignore[attr-defined]
    if row is None:
        raise not_found(what[0], what[1], ident)
    return row


def get_or_404(session: Session, model: type[M], ident: int, what: tuple[str, str]) -> M:
    """The row with this id; 404 when there is none."""
    row = session.get(model, ident)
    if row is None:
        raise not_found(what[0], what[1], ident)
    return row


def like(value: str) -> str:
    """A LIKE pattern matching ``value`` anywhere, with its wildcards escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
