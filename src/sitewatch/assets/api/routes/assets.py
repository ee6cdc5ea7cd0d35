"""Assets: filtered lists, search, read; writes within the caller's compounds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import or_, select, true
from sqlalchemy.orm import Session

from ....contract import DeviceKind
from ....i18n import _
from ....web.errors import conflict, invalid
from ...models import Asset, Building, Compound, Organisation
from ..crud import get_visible, like, paginate, visible_ref
from ..deps import IdPath, Limit, Offset, OptId, PrincipalDep, Search, SessionDep, WriterDep
from ..schemas import AssetFields, AssetIn, AssetOut, AssetPatch, Page
from ..scope import assets_visible, check_compound_writable, compounds_visible

router = APIRouter(prefix="/assets", tags=["assets"])
CompoundCode = Annotated[
    str | None, Query(max_length=40, pattern=r"^[^\x00-\x1f\x7f]*$", description="Compound code")
]


@router.get("", response_model=Page[AssetOut])
def list_assets(
    session: SessionDep, principal: PrincipalDep, compound_id: OptId = None, compound_code: CompoundCode = None,
    kind: DeviceKind | None = None, building_id: OptId = None, maintainer_org_id: OptId = None,
    owner_org_id: OptId = None, q: Search = None, limit: Limit = 50, offset: Offset = 0,
) -> dict[str, object]:  # fmt: skip
    """Assets the token may see; ``q`` matches asset code, name or serial number."""
    stmt = select(Asset).where(assets_visible(principal)).order_by(Asset.id)
    if compound_id is not None:
        stmt = stmt.where(Asset.compound_id == compound_id)
    if compound_code is not None:
        stmt = stmt.where(Asset.compound_id.in_(select(Compound.id).where(Compound.code == compound_code)))
    if kind is not None:
        stmt = stmt.where(Asset.kind == kind.value)
    if building_id is not None:
        stmt = stmt.where(Asset.building_id == building_id)
    if maintainer_org_id is not None:
        stmt = stmt.where(Asset.maintainer_org_id == maintainer_org_id)
    if owner_org_id is not None:
        stmt = stmt.where(Asset.owner_org_id == owner_org_id)
    if q:
        pattern = like(q)
        stmt = stmt.where(or_(Asset.asset_code.like(pattern, escape="\\"), Asset.name.like(pattern, escape="\\"),
                              Asset.serial_no.like(pattern, escape="\\")))  # fmt: skip
    return paginate(session, stmt, limit, offset)


@router.get("/{asset_id}", response_model=AssetOut)
def get_asset(asset_id: IdPath, session: SessionDep, principal: PrincipalDep) -> Asset:
    """One asset."""
    return get_visible(session, Asset, asset_id, assets_visible(principal), _("asset"))


def _check_refs(session: Session, compound_id: int, body: AssetFields, fields: set[str]) -> None:
    """Referenced building and organisations exist (and the building is in the asset's compound)."""
    if "building_id" in fields and body.building_id is not None:
        building = session.get(Building, body.building_id)
        if building is None or building.compound_id != compound_id:
            raise invalid("building_id", _("building {id} is not in this asset's compound; give a building of "
                                           "the same compound", id=body.building_id), body.building_id)  # fmt: skip
    for field in ("owner_org_id", "maintainer_org_id"):
        value = getattr(body, field)
        if field in fields and value is not None:
            visible_ref(session, Organisation, value, true(), field, _("organisation"))


@router.post("", response_model=AssetOut, status_code=201)
def create_asset(body: AssetIn, session: SessionDep, principal: WriterDep) -> Asset:
    """Register an asset in a compound the caller manages."""
    compound = visible_ref(session, Compound, body.compound_id, compounds_visible(principal), "compound_id",
                           _("compound"))  # fmt: skip
    check_compound_writable(principal, compound, _("compound"), body.compound_id)
    _check_refs(session, compound.id, body, set(body.model_fields_set))
    _check_unique(session, body, None)
    asset = Asset(**body.model_dump(mode="json"))
    asset.install_date, asset.warranty_end = body.install_date, body.warranty_end
    session.add(asset)
    session.commit()
    return asset


def _check_unique(session: Session, body: AssetFields, asset_id: int | None) -> None:
    """409 naming the field when the asset code or serial number is taken by another asset."""
    for field, column in (("asset_code", Asset.asset_code), ("serial_no", Asset.serial_no)):
        value = getattr(body, field, None)
        if value is None:
            continue
        other = session.scalar(select(Asset.id).where(column == value))
        if other is not None and other != asset_id:
            raise conflict(_("{field} {value} is already used by another asset; choose another",
                             field=field, value=value), field, value)  # fmt: skip


@router.patch("/{asset_id}", response_model=AssetOut)
def update_asset(asset_id: IdPath, body: AssetPatch, session: SessionDep, principal: WriterDep) -> Asset:
    """Change an asset in a compound the caller manages."""
    asset = get_visible(session, Asset, asset_id, assets_visible(principal), _("asset"))
    check_compound_writable(principal, asset.compound, _("asset"), asset_id)
    fields = set(body.model_fields_set)
    _check_refs(session, asset.compound_id, body, fields)
    _check_unique(session, body, asset.id)
    for key in fields:
        setattr(asset, key, getattr(body, key))
    session.commit()
    return asset


@router.delete("/{asset_id}", status_code=204, response_class=Response)
def delete_asset(asset_id: IdPath, session: SessionDep, principal: WriterDep) -> Response:
    """Delete an asset and its device bindings."""
    asset = get_visible(session, Asset, asset_id, assets_visible(principal), _("asset"))
    check_compound_writable(principal, asset.compound, _("asset"), asset_id)
    session.delete(asset)
    session.commit()
    return Response(status_code=204)
