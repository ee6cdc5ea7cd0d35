"""Organisations: a directory every token may read; admins add entries."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from ....i18n import _
from ....text import name_key
from ....web.errors import conflict
from ...ledger import OrgType
from ...models import Organisation
from ..crud import get_or_404, like, paginate
from ..deps import AdminDep, IdPath, Limit, Offset, PrincipalDep, Search, SessionDep
from ..schemas import OrganisationIn, OrganisationOut, Page

router = APIRouter(prefix="/organisations", tags=["organisations"])


@router.get("", response_model=Page[OrganisationOut])
def list_organisations(
    session: SessionDep, _principal: PrincipalDep, type: OrgType | None = None, q: Search = None,
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
def get_organisation(org_id: IdPath, session: SessionDep, _principal: PrincipalDep) -> Organisation:
    """One organisation."""
    return get_or_404(session, Organisation, org_id, _("organisation"))


@router.post("", response_model=OrganisationOut, status_code=201)
def create_organisation(body: OrganisationIn, session: SessionDep, _admin: AdminDep) -> Organisation:
    """Add an organisation (admin); a name that differs from a registered one only in Unicode form,
    width or case is the same name (409)."""
    other = session.scalar(select(Organisation.name).where(Organisation.name_key == name_key(body.name)))
    if other is not None:
        raise conflict(_("an organisation named {name} already exists (names are compared after Unicode "
                         "normalisation and case folding); use it or choose another name", name=other),
                       "name", body.name)  # fmt: skip
    org = Organisation(**body.model_dump(mode="json"))
    session.add(org)
    session.commit()
    return org
