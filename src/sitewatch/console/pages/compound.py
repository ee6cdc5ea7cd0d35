"""One compound: its buildings, its devices by kind with status and last seen, its gateway, its
open alerts."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...alerts.actions import AlertScope, Filters, list_alerts
from ...assets.models import Asset, Building, Compound, DeviceBinding, Organisation
from ...contract import DeviceKind
from ...i18n import _
from ...web.deps import SessionDep
from ...web.errors import forbidden, not_found
from ..auth import ViewerDep
from ..context import Console, ConsoleDep, Viewer, page_language
from ..display import status
from ..health import KINDS, buildings_of, registered_devices
from ..paging import Pager

router = APIRouter(dependencies=[Depends(page_language)])
NAV = None
PER_PAGE = 50
CodePath = Annotated[str, Path(min_length=1, max_length=64)]
KindQuery = Annotated[str | None, Query(pattern="^(elevator|camera|charger|streetlight|water_meter)$")]
PageQuery = Annotated[int, Query(ge=1, le=100_000)]


def in_scope(viewer: Viewer, code: str) -> None:
    """403 for a compound outside the caller's scope, whether it exists or not."""
    if not viewer.scope.sees(code):
        raise forbidden(_("compound {code} is not one of yours", code=code))


def load_compound(session: Session, code: str) -> Compound:
    """The compound of ``code`` (404 when absent)."""
    row = session.scalars(select(Compound).where(Compound.code == code)).one_or_none()
    if row is None:
        raise not_found(_("compound"), code)
    return row


def _devices(session: Session, console: Console, compound: Compound, kind: str, page: int,
             now_ms: int) -> tuple[list[dict[str, Any]], Pager]:  # fmt: skip
    """One page of the compound's devices of ``kind`` with their newest values."""
    base = (
        select(Asset, DeviceBinding.device_id, Building.building_no)
        .outerjoin(DeviceBinding, (DeviceBinding.asset_id == Asset.id) & DeviceBinding.valid_to.is_(None))
        .outerjoin(Building, Asset.building_id == Building.id)
        .where(Asset.compound_id == compound.id, Asset.kind == kind)
        .order_by(Asset.asset_code)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    pager = Pager(total, page, PER_PAGE)
    rows = session.execute(base.limit(PER_PAGE).offset(pager.offset)).all()
    ids = [device for _asset, device, _b in rows if device]
    found = console.store.latest(devices=ids, kind=DeviceKind(kind), compound=compound.code) if ids else []
    latest = {item.device: item for item in found}
    out = []
    for asset, device, building_no in rows:
        seen = latest.get(device) if device else None
        out.append({
            "asset": asset, "device": device, "building": building_no,
            "last_seen": seen.last_seen_ms if seen else None, "values": dict(seen.values) if seen else {},
            "status": status(kind, seen.last_seen_ms if seen else None, now_ms),
        })  # fmt: skip
    return out, pager


def _page(request: Request, console: Console, viewer: Viewer, session: Session, code: str, kind: str | None,
          page: int, template: str) -> HTMLResponse:  # fmt: skip
    in_scope(viewer, code)
    compound = load_compound(session, code)
    now = console.clock()
    registered = registered_devices(session, viewer.scope, compound=code).get(code, {})
    snapshot = console.summary.get()
    reporting = {k: n for k, n in snapshot.reporting.get(code, {}).items() if viewer.scope.sees(code, k)}
    kinds = [k.value for k in KINDS if k.value in registered]
    chosen = kind if kind in kinds else (kinds[0] if kinds else DeviceKind.ELEVATOR.value)
    devices, pager = _devices(session, console, compound, chosen, page, now)
    alert_scope = AlertScope(viewer.principal.role, viewer.scope)
    alerts = list_alerts(session, alert_scope, Filters(compound=code), limit=10)
    manager = session.get(Organisation, compound.manager_org_id) if compound.manager_org_id else None
    return console.render(
        request, template, viewer=viewer, compound=compound, manager=manager, kinds=kinds, kind=chosen,
        registered=registered, reporting=reporting, devices=devices, pager=pager,
        gateways=console.store.gateways(compound=code), alerts=alerts,
        buildings=buildings_of(session, compound.id) if template == "compound.html" else [],
        page_path=f"/compounds/{quote(code, safe='')}",
    )  # fmt: skip


@router.get("/compounds/{code}")
def compound_page(request: Request, code: CodePath, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                  kind: KindQuery = None, page: PageQuery = 1) -> HTMLResponse:  # fmt: skip
    """A compound's page."""
    return _page(request, console, viewer, session, code, kind, page, "compound.html")


@router.get("/compounds/{code}/live")
def compound_live(request: Request, code: CodePath, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                  kind: KindQuery = None, page: PageQuery = 1) -> HTMLResponse:  # fmt: skip
    """The compound page's live part (device figures, gateway, device list), polled by the page."""
    return _page(request, console, viewer, session, code, kind, page, "_compound_live.html")
