"""Compounds: list, search, read; property managers and admins create and change them."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import or_, select

from ...ledger import ManagementMode
from ...models import Community, Compound, Organisation, Role, Street
from ..crud import get_or_404, get_visible, like, paginate
from ..deps import IdPath, Limit, Offset, OptId, PrincipalDep, Search, SessionDep, WriterDep
from ..errors import RESPONSES, forbidden, invalid
from ..schemas import CompoundIn, CompoundOut, CompoundPatch, Page
from ..scope import check_compound_writable, compounds_visible

router = APIRouter(prefix="/compounds", tags=["compounds"], responses=RESPONSES)
WHAT = ("compound", "小区")


@router.get("", response_model=Page[CompoundOut])
def list_compounds(
    session: SessionDep, principal: PrincipalDep, q: Search = None, district_id: OptId = None,
    street_id: OptId = None, community_id: OptId = None, manager_org_id: OptId = None,
    management_mode: ManagementMode | None = None, limit: Limit = 50, offset: Offset = 0,
) -> dict[str, object]:  # fmt: skip
    """Compounds the token may see; ``q`` matches code or Chinese/English name."""
    stmt = select(Compound).where(compounds_visible(principal)).order_by(Compound.code)
    if q:
        pattern = like(q)
        stmt = stmt.where(or_(Compound.code.like(pattern, escape="\\"), Compound.name_zh.like(pattern, escape="\\"),
                              Compound.name_en.like(pattern, escape="\\")))  # fmt: skip
    if community_id is not None:
        stmt = stmt.where(Compound.community_id == community_id)
    if street_id is not None:
        stmt = stmt.where(
            Compound.community_id.in_(select(Community.id).where(Community.street_id == street_id))
        )
    if district_id is not None:
        streets = select(Street.id).where(Street.district_id == district_id)
        stmt = stmt.where(
            Compound.community_id.in_(select(Community.id).where(Community.street_id.in_(streets)))
        )
    if manager_org_id is not None:
        stmt = stmt.where(Compound.manager_org_id == manager_org_id)
    if management_mode is not None:
        stmt = stmt.where(Compound.management_mode == management_mode.value)
    return paginate(session, stmt, limit, offset)


@router.get("/{compound_id}", response_model=CompoundOut)
def get_compound(compound_id: IdPath, session: SessionDep, principal: PrincipalDep) -> Compound:
    """One compound."""
    return get_visible(session, Compound, compound_id, compounds_visible(principal), WHAT)


def _check_refs(session: SessionDep, principal: WriterDep, manager_org_id: int | None) -> None:
    if manager_org_id is not None and session.get(Organisation, manager_org_id) is None:
        raise invalid(
            "manager_org_id", f"unknown organisation {manager_org_id}", f"单位 {manager_org_id} 不存在"
        )
    if principal.role is Role.PROPERTY_MANAGER and manager_org_id != principal.org_id:
        raise forbidden("a property manager may only manage compounds for its own organisation",
                        "物业只能管理本单位的小区")  # fmt: skip


@router.post("", response_model=CompoundOut, status_code=201)
def create_compound(body: CompoundIn, session: SessionDep, principal: WriterDep) -> Compound:
    """Create a compound (a property manager: only one its organisation manages)."""
    if session.get(Community, body.community_id) is None:
        raise invalid(
            "community_id", f"unknown community {body.community_id}", f"社区 {body.community_id} 不存在"
        )
    _check_refs(session, principal, body.manager_org_id)
    compound = Compound(**body.model_dump(mode="json"))
    session.add(compound)
    session.commit()
    return compound


@router.patch("/{compound_id}", response_model=CompoundOut)
def update_compound(
    compound_id: IdPath, body: CompoundPatch, session: SessionDep, principal: WriterDep
) -> Compound:
    """Change a compound the caller manages."""
    compound = get_or_404(session, Compound, compound_id, WHAT)
    check_compound_writable(principal, compound)
    changes = body.model_dump(mode="json", exclude_unset=True)
    if "manager_org_id" in changes:
        _check_refs(session, principal, changes["manager_org_id"])
    for key, value in changes.items():
        if value is None and key in ("name_zh", "households", "buildings_count", "management_mode"):
            raise invalid(key, f"{key} cannot be null", f"{key} 不能为空")
        setattr(compound, key, value)
    session.commit()
    return compound


@router.delete("/{compound_id}", status_code=204, response_class=Response)
def delete_compound(compound_id: IdPath, session: SessionDep, principal: WriterDep) -> Response:
    """Delete a compound with its buildings, assets and contracts."""
    compound = get_or_404(session, Compound, compound_id, WHAT)
    check_compound_writable(principal, compound)
    session.delete(compound)
    session.commit()
    return Response(status_code=204)
