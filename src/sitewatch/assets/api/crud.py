"""Query helpers shared by the routes: pagination, and loading what the caller may see."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.orm import Session

from ...i18n import _
from ...web.errors import ApiError, invalid, not_found
from ..models import Base

M = TypeVar("M", bound=Base)


def paginate(session: Session, stmt: Select[Any], limit: int, offset: int) -> dict[str, Any]:
    """``{total, limit, offset, items}`` of ``stmt`` (items are ORM objects, ordered by the caller)."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(limit).offset(offset)))
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def get_visible(session: Session, model: type[M], ident: int, visible: ColumnElement[bool], what: str) -> M:
    """The row with this id if the caller may see it; 404 otherwise, the same answer whether it
    does not exist or lies outside the caller's scope (for reads and writes alike)."""
    row = session.scalars(select(model).where(model.id == ident, visible)).first()  # type: ignore[attr-defined]
    if row is None:
        raise not_found(what, ident)
    return row


def get_or_404(session: Session, model: type[M], ident: int, what: str) -> M:
    """The row with this id (for things every token may see); 404 when there is none."""
    return get_visible(session, model, ident, true(), what)


def visible_ref(
    session: Session, model: type[M], ident: int, visible: ColumnElement[bool], field: str, what: str
) -> M:
    """The row a body field refers to; 422 naming the field when it does not exist or the caller
    may not see it (the same answer, so a reference tells nothing about others' data)."""
    try:
        return get_visible(session, model, ident, visible, what)
    except ApiError:
        raise invalid(field, _("no {what} with id {id} that you may use; check the id", what=what, id=ident),
                      ident, "unknown_reference") from None  # fmt: skip


def like(value: str) -> str:
    """A LIKE pattern matching ``value`` anywhere, with its wildcards escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
