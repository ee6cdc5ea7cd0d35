"""Maintenance contracts (managed through ledger imports; read here)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ....contract import DeviceKind
from ....i18n import _
from ...models import Contract, ContractKind
from ..crud import get_visible, like, paginate
from ..deps import IdPath, Limit, Offset, OptId, PrincipalDep, Search, SessionDep
from ..schemas import ContractOut, Page
from ..scope import contracts_visible

router = APIRouter(prefix="/contracts", tags=["contracts"])


def _out(c: Contract) -> ContractOut:
    return ContractOut(
        id=c.id, contract_no=c.contract_no, org_id=c.org_id, compound_id=c.compound_id, crew_id=c.crew_id,
        kinds=[k.kind for k in c.kinds], start_date=c.start_date, end_date=c.end_date,
        response_minutes=c.response_minutes, arrival_minutes=c.arrival_minutes,
    )  # fmt: skip


@router.get("", response_model=Page[ContractOut])
def list_contracts(
    session: SessionDep, principal: PrincipalDep, compound_id: OptId = None, org_id: OptId = None,
    kind: DeviceKind | None = None, q: Search = None, limit: Limit = 50, offset: Offset = 0,
) -> Page[ContractOut]:  # fmt: skip
    """Contracts the token may see; filter by compound, maintainer organisation or covered kind."""
    stmt = select(Contract).options(selectinload(Contract.kinds)).where(contracts_visible(principal))
    stmt = stmt.order_by(Contract.id)
    if compound_id is not None:
        stmt = stmt.where(Contract.compound_id == compound_id)
    if org_id is not None:
        stmt = stmt.where(Contract.org_id == org_id)
    if kind is not None:
        stmt = stmt.where(
            Contract.id.in_(select(ContractKind.contract_id).where(ContractKind.kind == kind.value))
        )
    if q:
        stmt = stmt.where(Contract.contract_no.like(like(q), escape="\\"))
    data = paginate(session, stmt, limit, offset)
    return Page[ContractOut](
        total=data["total"], limit=limit, offset=offset, items=[_out(c) for c in data["items"]]
    )


@router.get("/{contract_id}", response_model=ContractOut)
def get_contract(contract_id: IdPath, session: SessionDep, principal: PrincipalDep) -> ContractOut:
    """One contract."""
    return _out(get_visible(session, Contract, contract_id, contracts_visible(principal), _("contract")))
