"""Maintenance crews (managed through ledger imports; read here)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from ....i18n import _
from ...models import Crew
from ..crud import get_visible, like, paginate
from ..deps import IdPath, Limit, Offset, OptId, PrincipalDep, Search, SessionDep
from ..schemas import CrewOut, Page
from ..scope import crews_visible

router = APIRouter(prefix="/crews", tags=["crews"])


@router.get("", response_model=Page[CrewOut])
def list_crews(
    session: SessionDep, principal: PrincipalDep, org_id: OptId = None, q: Search = None,
    limit: Limit = 50, offset: Offset = 0,
) -> dict[str, object]:  # fmt: skip
    """Crews the token may see; ``q`` matches code or name."""
    stmt = select(Crew).options(selectinload(Crew.members)).where(crews_visible(principal)).order_by(Crew.id)
    if org_id is not None:
        stmt = stmt.where(Crew.org_id == org_id)
    if q:
        stmt = stmt.where(
            or_(Crew.crew_code.like(like(q), escape="\\"), Crew.name.like(like(q), escape="\\"))
        )
    return paginate(session, stmt, limit, offset)


@router.get("/{crew_id}", response_model=CrewOut)
def get_crew(crew_id: IdPath, session: SessionDep, principal: PrincipalDep) -> Crew:
    """One crew with its members."""
    return get_visible(session, Crew, crew_id, crews_visible(principal), _("crew"))
