"""Compounds: list, search, read; property managers and admins create and change them."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import or_, select, true

from ....i18n import _
from ....web.errors import conflict, forbidden, invalid
from ...codes import clashing_code, lock_codes
from ...ledger import ManagementMode
from ...models import Community, Compound, Organisation, Role, Street
from ..crud import get_visible, like, paginate, visible_ref
from ..deps import IdPath, Limit, Offset, OptId, Principal, PrincipalDep, Search, SessionDep, WriterDep
from ..schemas import CompoundIn, CompoundOut, CompoundPatch, Page
from ..scope import check_compound_writable, compounds_visible

router = APIRouter(prefix="/compounds", tags=["compounds"])


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
    return get_visible(session, Compound, compound_id, compounds_visible(principal), _("compound"))


def _check_manager(session: SessionDep, principal: Principal, manager_org_id: int | None) -> None:
    if manager_org_id is not None:
        visible_ref(session, Organisation, manager_org_id, true(), "manager_org_id", _("organisation"))
    if principal.role is Role.PROPERTY_MANAGER and manager_org_id != principal.org_id:
        raise forbidden(_("a property manager may only manage compounds for its own organisation; set "
                          "manager_org_id to {org}", org=principal.org_id))  # fmt: skip


@router.post("", response_model=CompoundOut, status_code=201)
def create_compound(body: CompoundIn, session: SessionDep, principal: WriterDep) -> Compound:
    """Create a compound (a property manager: only one its organisation manages). A code that
    clashes with a registered one (equal regardless of case, or one is the other followed by
    ``-``) is refused with 409: device ids would not tell the two compounds apart."""
    visible_ref(session, Community, body.community_id, true(), "community_id", _("community"))
    _check_manager(session, principal, body.manager_org_id)
    lock_codes(session)
    if clashing_code(session, body.code) is not None:
        raise conflict(_("compound code {code} clashes with a registered code (equal but for case, or one is the "
                         "other followed by '-'), so device ids could not tell them apart; choose another code",
                         code=body.code), "code", body.code)  # fmt: skip
    compound = Compound(**body.model_dump(mode="json"))
    session.add(compound)
    session.commit()
    return compound


@router.patch("/{compound_id}", response_model=CompoundOut)
def update_compound(
    compound_id: IdPath, body: CompoundPatch, session: SessionDep, principal: WriterDep
) -> Compound:
    """Change a compound the caller manages."""
    compound = get_visible(session, Compound, compound_id, compounds_visible(principal), _("compound"))
    check_compound_writable(principal, compound, _("compound"), compound_id)
    changes = body.model_dump(mode="json", exclude_unset=True)
    if "manager_org_id" in changes:
        _check_manager(session, principal, changes["manager_org_id"])
    for key, value in changes.items():
        if value is None and key in ("name_zh", "households", "buildings_count", "management_mode"):
            raise invalid(key, _("cannot be null; give a value or leave the field out"), None, "required")
        setattr(compound, key, value)
    session.commit()
    return compound


@router.delete("/{compound_id}", status_code=204, response_class=Response)
def delete_compound(compound_id: IdPath, session: SessionDep, principal: WriterDep) -> Response:
    """Delete a compound with its buildings, assets and contracts."""
    compound = get_visible(session, Compound, compound_id, compounds_visible(principal), _("compound"))
    check_compound_writable(principal, compound, _("compound"), compound_id)
    session.delete(compound)
    session.commit()
    return Response(status_code=204)
