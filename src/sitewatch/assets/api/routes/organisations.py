"""Organisations: a directory every token may read; admins add and change entries."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from ...ledger import OrgType
from ...models import Organisation
from ..crud import get_or_404, like, paginate
from ..deps import AdminDep, IdPath, Limit, Offset, PrincipalDep, Search, SessionDep
from ..errors import RESPONSES
from ..schemas import OrganisationIn, OrganisationOut, Page

router = APIRouter(prefix="/organisations", tags=["organisations"], responses=RESPONSES)
WHAT = ("organisation", "单位")


@router.get("", response_model=Page[OrganisationOut])
def list_organisations(
    session: SessionDep, _: PrincipalDep, type: OrgType | None = None, q: Search = None,
    limit: Limit = 50, offset: Offset = 0,
) -> dict[str, object]:  # fmt: skip
    """Organisations; ``q`` matches the name."""
    stmt = select(Organisation).order_by(Organisation.id)
    if type is not None:
        stmt = stmt.where(Organisation.type == type.value)
    if q:
        stmt = stmt.where(Organisation.name.like(like(q), escape="\\"))
    return paginate(session, stmt, limit, offset)


@router.get("/{org_id}", response_model=OrganisationOut)
def get_organisation(org_id: IdPath, session: SessionDep, _: PrincipalDep) -> Organisation:
    """One organisation."""
    return get_or_404(session, Organisation, org_id, WHAT)


@router.post("", response_model=OrganisationOut, status_code=201)
def create_organisation(body: OrganisationIn, session: SessionDep, _: AdminDep) -> Organisation:
    """Add an organisation (admin)."""
    org = Organisation(**body.model_dump(mode="json"))
    session.add(org)
    session.commit()
    return org
