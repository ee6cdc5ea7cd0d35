"""One device: its newest values, charts of its metrics over a chosen range, its events and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...alerts.actions import AlertScope, Filters, list_alerts
from ...assets.models import Asset, Building, Compound, DeviceBinding
from ...contract import KINDS, DeviceKind
from ...i18n import _
from ...store import Aggregation, SeriesQuery, Window
from ...web.deps import SessionDep
from ...web.errors import forbidden, not_found
from ..auth import ViewerDep
from ..context import Console, ConsoleDep, Viewer, page_language, secure_headers
from ..display import status

router = APIRouter(dependencies=[Depends(page_language)])
NAV = None
# chart ranges: (label, length, window of one point) — a few hundred points at most
RANGES: dict[str, tuple[int, str]] = {
    "1h": (3_600_000, "1m"), "6h": (6 * 3_600_000, "5m"), "24h": (86_400_000, "15m"),
    "7d": (7 * 86_400_000, "1h"), "30d": (30 * 86_400_000, "6h"),
}  # fmt: skip
DevicePath = Annotated[str, Path(min_length=1, max_length=200)]
RangeQuery = Annotated[str, Query(pattern="^(1h|6h|24h|7d|30d)$")]
MAX_EVENTS = 50


@dataclass(frozen=True, slots=True)
class Found:
    """A device as the registry (or, failing that, the store) knows it."""

    device: str
    kind: str
    compound: str
    asset: Asset | None
    compound_name: str
    building: str | None


def find_device(session: Session, console: Console, viewer: Viewer, device: str) -> Found:
    """The device (404 when neither the registry nor the store knows it; 403 outside the scope)."""
    row = session.execute(
        select(Asset, Compound.code, Compound.name_zh, Building.building_no)
        .join(DeviceBinding, (DeviceBinding.asset_id == Asset.id) & DeviceBinding.valid_to.is_(None))
        .join(Compound, Asset.compound_id == Compound.id)
        .outerjoin(Building, Asset.building_id == Building.id)
        .where(DeviceBinding.device_id == device)
    ).first()
    if row is not None:
        asset, code, name, building = row
        found = Found(device, asset.kind, code, asset, name, building)
    else:
        refs = console.store.devices(devices=(device,))
        if not refs:
            raise not_found(_("device"), device)
        ref = refs[0]
        found = Found(device, ref.kind.value, ref.compound, None, ref.compound, ref.tag("building") or None)
    if not viewer.scope.sees(found.compound, found.kind):
        raise forbidden(_("device {device} is not one of yours", device=device))
    return found


@router.get("/devices/{device_id}")
def device_page(request: Request, device_id: DevicePath, console: ConsoleDep, viewer: ViewerDep,
                session: SessionDep, range: RangeQuery = "24h") -> HTMLResponse:  # fmt: skip
    """A device's page."""
    found = find_device(session, console, viewer, device_id)
    now = console.clock()
    latest = console.store.latest(devices=(device_id,), kind=DeviceKind(found.kind))
    seen = latest[0] if latest else None
    length = RANGES[range][0]
    events = console.store.events(now - length, now + 1, devices=(device_id,))[-MAX_EVENTS:][::-1]
    alerts = list_alerts(session, AlertScope(viewer.principal.role, viewer.scope),
                         Filters(states=(), device=device_id), limit=20)  # fmt: skip
    spec = KINDS.get(DeviceKind(found.kind)) if found.kind in {k.value for k in DeviceKind} else None
    return console.render(
        request, "device.html", viewer=viewer, found=found, seen=seen, events=events, alerts=alerts,
        range=range, ranges=list(RANGES), spec=spec, timezone=console.settings.timezone,
        device_status=status(found.kind, seen.last_seen_ms if seen else None, now),
    )  # fmt: skip


@router.get("/devices/{device_id}/series.json")
def device_series(device_id: DevicePath, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                  range: RangeQuery = "24h") -> JSONResponse:  # fmt: skip
    """The device's metrics over the range, one point per window, for the page's charts."""
    found = find_device(session, console, viewer, device_id)
    kind = DeviceKind(found.kind)
    spec = KINDS[kind]
    length, window = RANGES[range]
    now = console.clock()
    metrics = tuple(spec.metrics)
    points = console.store.query(SeriesQuery(
        kind, metrics, now - length, now + 1, devices=(device_id,), window=Window.parse(window),
        aggregation=Aggregation.MEAN, tz=console.settings.timezone,
    ))  # fmt: skip
    stamps = sorted({p.ts_ms for p in points})
    index = {ts: i for i, ts in enumerate(stamps)}
    values: dict[str, list[float | None]] = {m: [None] * len(stamps) for m in metrics}
    for p in points:
        values[p.metric][index[p.ts_ms]] = p.value
    series: list[dict[str, Any]] = [
        {"metric": m, "label": _(spec.metrics[m].description), "unit": spec.metrics[m].unit, "values": values[m]}
        for m in metrics if any(v is not None for v in values[m])
    ]  # fmt: skip
    response = JSONResponse({"ts": [ts / 1000 for ts in stamps], "series": series})
    secure_headers(response, "en")
    return response
