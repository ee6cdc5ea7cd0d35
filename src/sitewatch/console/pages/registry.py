"""The registry: compounds, buildings, assets, contracts and crews in the caller's scope, to browse
and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from ...assets.models import Asset, Building, Compound, Contract, Crew, DeviceBinding, Organisation
from ...i18n import N_
from ...web.deps import SessionDep
from ...web.principal import CompoundScope
from ..auth import ViewerDep
from ..context import ConsoleDep, NavItem, page_language
from ..paging import Pager

router = APIRouter(dependencies=[Depends(page_language)])
NAV = NavItem("/registry", N_("Registry"), order=40)
PER_PAGE = 50
TABS = {"compounds": N_("Compounds"), "buildings": N_("Buildings"), "assets": N_("Assets"),
        "contracts": N_("Contracts"), "crews": N_("Crews")}  # fmt: skip
TabQuery = Annotated[str, Query(pattern="^(compounds|buildings|assets|contracts|crews)$")]
TextQuery = Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
PageQuery = Annotated[int, Query(ge=1, le=100_000)]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _compounds_in(scope: CompoundScope) -> ColumnElement[bool] | None:
    return None if scope.everything else Compound.code.in_(sorted(scope.codes))


def _assets_in(scope: CompoundScope) -> ColumnElement[bool] | None:
    """Assets of the compounds (and kinds there) in scope."""
    if scope.everything:
        return None
    parts: list[ColumnElement[bool]] = []
    whole = [c for c, kinds in scope.compounds.items() if kinds is None]
    if whole:
        parts.append(Compound.code.in_(whole))
    for code, kinds in scope.compounds.items():
        if kinds is not None:
            parts.append(and_(Compound.code == code, Asset.kind.in_(sorted(kinds))))
    return or_(*parts) if parts else false()


def _query(tab: str, scope: CompoundScope, q: str | None) -> Select[Any]:
    pattern = _like(q) if q else None
    statement: Any
    if tab == "compounds":
        statement = select(Compound, Organisation.name).outerjoin(Organisation, Compound.manager_org_id == Organisation.id)
        where = _compounds_in(scope)
        if pattern:
            statement = statement.where(or_(Compound.code.like(pattern, escape="\\"), Compound.name_zh.like(pattern, escape="\\"),
                                            Compound.name_en.like(pattern, escape="\\")))  # fmt: skip
        order: Any = Compound.code
    elif tab == "buildings":
        statement = select(Building, Compound.code).join(Compound, Building.compound_id == Compound.id)
        where = _compounds_in(scope)
        if pattern:
            statement = statement.where(or_(Building.building_no.like(pattern, escape="\\"),
                                            Compound.code.like(pattern, escape="\\")))  # fmt: skip
        order = (Compound.code, func.length(Building.building_no), Building.building_no)
    elif tab == "assets":
        statement = (
            select(Asset, Compound.code, DeviceBinding.device_id, Organisation.name)
            .join(Compound, Asset.compound_id == Compound.id)
            .outerjoin(DeviceBinding, (DeviceBinding.asset_id == Asset.id) & DeviceBinding.valid_to.is_(None))
            .outerjoin(Organisation, Asset.maintainer_org_id == Organisation.id)
        )
        where = _assets_in(scope)
        if pattern:
            statement = statement.where(or_(Asset.asset_code.like(pattern, escape="\\"), Asset.name.like(pattern, escape="\\"),
                                            Asset.serial_no.like(pattern, escape="\\"),
                                            DeviceBinding.device_id.like(pattern, escape="\\")))  # fmt: skip
        order = Asset.asset_code
    elif tab == "contracts":
        statement = (
            select(Contract, Compound.code, Organisation.name, Crew.crew_code)
            .join(Compound, Contract.compound_id == Compound.id)
            .join(Organisation, Contract.org_id == Organisation.id)
            .outerjoin(Crew, Contract.crew_id == Crew.id)
        )
        where = _compounds_in(scope)
        if pattern:
            statement = statement.where(or_(Contract.contract_no.like(pattern, escape="\\"),
                                            Compound.code.like(pattern, escape="\\"),
                                            Organisation.name.like(pattern, escape="\\")))  # fmt: skip
        order = Contract.contract_no
    else:  # crews: those of organisations with a contract in scope (every crew for who sees everything)
        statement = select(Crew, Organisation.name).join(Organisation, Crew.org_id == Organisation.id)
        where = None
        if not scope.everything:
            holders = select(Contract.crew_id).join(Compound, Contract.compound_id == Compound.id).where(
                Compound.code.in_(sorted(scope.codes)), Contract.crew_id.is_not(None))
            where = Crew.id.in_(holders)
        if pattern:
            statement = statement.where(or_(Crew.crew_code.like(pattern, escape="\\"), Crew.name.like(pattern, escape="\\"),
                                            Organisation.name.like(pattern, escape="\\")))  # fmt: skip
        order = Crew.crew_code
    if where is not None:
        statement = statement.where(where)
    return statement.order_by(*(order if isinstance(order, tuple) else (order,)))


def _rows(session: Session, tab: str, scope: CompoundScope, q: str | None, page: int) -> tuple[list[Any], Pager]:
    statement = _query(tab, scope, q)
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    pager = Pager(total, page, PER_PAGE)
    return list(session.execute(statement.limit(PER_PAGE).offset(pager.offset)).all()), pager


@router.get("/registry")
def registry_page(request: Request, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                  tab: TabQuery = "compounds", q: TextQuery = None, page: PageQuery = 1) -> HTMLResponse:  # fmt: skip
    """Browse and search the registry."""
    rows, pager = _rows(session, tab, viewer.scope, q, page)
    return console.render(request, "registry.html", viewer=viewer, tab=tab, tabs=TABS, q=q or "", rows=rows,
                          pager=pager)  # fmt: skip
