"""Buildings of compounds."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select, update

from ....i18n import _
from ....web.errors import conflict
from ...models import Asset, Building, Compound
from ..crud import get_visible, like, paginate, visible_ref
from ..deps import IdPath, Limit, Offset, OptId, PrincipalDep, Search, SessionDep, WriterDep
from ..schemas import BuildingIn, BuildingOut, Page
from ..scope import check_compound_writable, compound_ids_visible, compounds_visible

router = APIRouter(prefix="/buildings", tags=["buildings"])


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
        session, Building, building_id, compound_ids_visible(principal, Building.compound_id), _("building")
    )


@router.post("", response_model=BuildingOut, status_code=201)
def create_building(body: BuildingIn, session: SessionDep, principal: WriterDep) -> Building:
    """Add a building to a compound the caller manages."""
    compound = visible_ref(session, Compound, body.compound_id, compounds_visible(principal), "compound_id",
                           _("compound"))  # fmt: skip
    check_compound_writable(principal, compound, _("compound"), body.compound_id)
    taken = session.scalar(
        select(Building.id).where(
            Building.compound_id == compound.id, Building.building_no == body.building_no
        )
    )
    if taken is not None:
        raise conflict(_("building {value} already exists in this compound; choose another number",
                         value=body.building_no), "building_no", body.building_no)  # fmt: skip
    building = Building(**body.model_dump())
    session.add(building)
    session.commit()
    return building


@router.delete("/{building_id}", status_code=204, response_class=Response)
def delete_building(building_id: IdPath, session: SessionDep, principal: WriterDep) -> Response:
    """Remove a building (its assets stay, without a building)."""
    building = get_visible(
        session, Building, building_id, compound_ids_visible(principal, Building.compound_id), _("building")
    )
    check_compound_writable(principal, building.compound, _("building"), building_id)
    session.execute(update(Asset).where(Asset.building_id == building.id).values(building_id=None))
    session.delete(building)
    session.commit()
    return Response(status_code=204)
