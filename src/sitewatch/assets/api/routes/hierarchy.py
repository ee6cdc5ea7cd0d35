"""Districts, streets and communities (created by ledger imports; read-only here)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import Select, select

from ...models import Community, District, Street
from ..crud import like, paginate
from ..deps import Limit, Offset, OptId, PrincipalDep, Search, SessionDep
from ..schemas import NamedOut, Page

router = APIRouter(tags=["hierarchy"])


def _page(session: SessionDep, stmt: Select[Any], parent: str, limit: int, offset: int) -> Page[NamedOut]:
    data = paginate(session, stmt, limit, offset)
    items = [
        NamedOut(id=r.id, name=r.name, parent_id=getattr(r, parent), code=getattr(r, "code", None))
        for r in data["items"]
    ]
    return Page[NamedOut](total=data["total"], limit=limit, offset=offset, items=items)


@router.get("/districts", response_model=Page[NamedOut])
def list_districts(
    session: SessionDep, _: PrincipalDep, q: Search = None, limit: Limit = 50, offset: Offset = 0
) -> Page[NamedOut]:
    """Districts (区/县); parent_id is the city."""
    stmt = select(District).order_by(District.id)
    if q:
        stmt = stmt.where(District.name.like(like(q), escape="\\"))
    return _page(session, stmt, "city_id", limit, offset)


@router.get("/streets", response_model=Page[NamedOut])
def list_streets(
    session: SessionDep, _: PrincipalDep, district_id: OptId = None, q: Search = None,
    limit: Limit = 50, offset: Offset = 0,
) -> Page[NamedOut]:  # fmt: skip
    """Streets (街道); parent_id is the district."""
    stmt = select(Street).order_by(Street.id)
    if district_id is not None:
        stmt = stmt.where(Street.district_id == district_id)
    if q:
        stmt = stmt.where(Street.name.like(like(q), escape="\\"))
    return _page(session, stmt, "district_id", limit, offset)


@router.get("/communities", response_model=Page[NamedOut])
def list_communities(
    session: SessionDep, _: PrincipalDep, street_id: OptId = None, q: Search = None,
    limit: Limit = 50, offset: Offset = 0,
) -> Page[NamedOut]:  # fmt: skip
    """Communities (社区); parent_id is the street."""
    stmt = select(Community).order_by(Community.id)
    if street_id is not None:
        stmt = stmt.where(Community.street_id == street_id)
    if q:
        stmt = stmt.where(Community.name.like(like(q), escape="\\"))
    return _page(session, stmt, "street_id", limit, offset)
