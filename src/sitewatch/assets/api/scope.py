"""What a token may see and change: SQL filters per role, and write checks per compound."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select, true
from sqlalchemy.orm import QueryableAttribute

from ...web.errors import not_found
from ...web.principal import Principal, Role
from ..models import Asset, Compound, Contract, ContractKind, Crew


def compounds_visible(p: Principal) -> ColumnElement[bool]:
    """Compounds the caller may read."""
    if p.reads_all:
        return true()
    if p.role is Role.PROPERTY_MANAGER:
        return Compound.manager_org_id == p.org_id
    return Compound.id.in_(select(Contract.compound_id).where(Contract.org_id == p.org_id))


def compound_ids_visible(p: Principal, column: QueryableAttribute[int]) -> ColumnElement[bool]:
    """Rows whose compound id ``column`` the caller may read."""
    if p.reads_all:
        return true()
    return column.in_(select(Compound.id).where(compounds_visible(p)))


def assets_visible(p: Principal) -> ColumnElement[bool]:
    """Assets the caller may read: a crew sees the kinds its organisation's contracts cover."""
    if p.reads_all:
        return true()
    if p.role is Role.PROPERTY_MANAGER:
        return Asset.compound_id.in_(select(Compound.id).where(Compound.manager_org_id == p.org_id))
    return exists(
        select(Contract.id)
        .join(ContractKind, ContractKind.contract_id == Contract.id)
        .where(
            Contract.org_id == p.org_id,
            Contract.compound_id == Asset.compound_id,
            ContractKind.kind == Asset.kind,
        )
    )


def contracts_visible(p: Principal) -> ColumnElement[bool]:
    """Contracts the caller may read."""
    if p.reads_all:
        return true()
    if p.role is Role.CREW:
        return Contract.org_id == p.org_id
    return compound_ids_visible(p, Contract.compound_id)


def crews_visible(p: Principal) -> ColumnElement[bool]:
    """Crews the caller may read: its own, or those working in its compounds."""
    if p.reads_all:
        return true()
    if p.role is Role.CREW:
        return Crew.org_id == p.org_id
    return Crew.id.in_(select(Contract.crew_id).where(contracts_visible(p)))


def check_compound_writable(p: Principal, compound: Compound, what: str, key: object) -> None:
    """404 for ``what`` ``key`` unless the caller may change this compound and what it holds.

    Only admins and property managers reach a write (the role check runs first); a property
    manager writes exactly the compounds it sees, so anything else is answered as not found.
    """
    if p.role is Role.ADMIN:
        return
    if p.role is Role.PROPERTY_MANAGER and compound.manager_org_id == p.org_id and p.org_id is not None:
        return
    raise not_found(what, key)
