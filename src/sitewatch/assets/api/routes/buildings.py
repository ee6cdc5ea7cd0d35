"""Buildings of compounds."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from ...models import Building, Compound
from ..crud import get_or_404, get_visible, like, paginate
from ..deps import IdPath, Limit, Offset, OptId, PrincipalDep, Search, SessionDep, WriterDep
from ..errors import RESPONSES, invalid
from ..schemas import BuildingIn, BuildingOut, Page
from ..scope import check_compound_writable, compound_ids_visible

router = APIRouter(prefix="/buildings", tags=["buildings"], responses=RESPONSES)
WHAT = ("building", "楼栋")


@router.get("", response_model=Page[BuildingOut])
def list_buildings(
    session: SessionDep, principal: PrincipalDep, compound_id: OptId = None, q: Search = None,
    limit: Limit = 50, offset: Offset = 0,
) -> dict[str, object]:  # fmt: skip
    """Buildings the token may see; ``q`` matches the building number."""
    stmt = select(Building).where(compound_ids_visible(principal, Building.compound_id)).order_by(Building.id)
    if compound_id is not None:
        stmt = stmt.where(Building.compound_id == compound_id)
    if q:
        stmt = stmt.where(Building.building_no.like(like(q), escape="\\"))
    return paginate(session, stmt, limit, offset)


@router.get("/{building_id}", response_model=BuildingOut)
def get_building(building_id: IdPath, session: SessionDep, principal: PrincipalDep) -> Building:
    """One building."""
    return get_visible(
        session, Building, building_id, compound_ids_visible(principal, Building.compound_id), WHAT
    )


@router.post("", response_model=BuildingOut, status_code=201)
def create_building(body: BuildingIn, session: SessionDep, principal: WriterDep) -> Building:
    """Add a building to a compound the caller manages."""
    compound = session.get(Compound, body.compound_id)
    if compound is None:
        raise invalid(
            "compound_id", f"unknown compound {body.compound_id}", f"小区 {body.compound_id} 不存在"
        )
    check_compound_writable(principal, compound)
    building = Building(**body.model_dump())
    session.add(building)
    session.commit()
    return building


@router.delete("/{building_id}", status_code=204, response_class=Response)
def delete_building(building_id: IdPath, session: SessionDep, principal: WriterDep) -> Response:
    """Remove a building (its assets stay, without a building)."""
    building = get_or_404(session, Building, building_id, WHAT)
    check_compound_writable(principal, building.compound)
    from sqlalchemy import update

    from ...models import Asset

    session.execute(update(Asset).where(Asset.building_id == building.id).values(building_id=None))
    session.delete(building)
    session.commit()
    return Response(status_code=204)
