"""The city overview: every compound in scope as a sortable table and on a map, coloured by health."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from ... import i18n
from ...alerts.actions import AlertScope
from ...i18n import N_
from ...web.deps import SessionDep
from ..auth import ViewerDep
from ..context import Console, ConsoleDep, NavItem, page_language
from ..health import HEALTH_WORDS, KINDS, CompoundHealth, Health, city_overview, summary

router = APIRouter(dependencies=[Depends(page_language)])
NAV = NavItem("/", N_("City"), order=10)

HEALTH_ORDER = {Health.DOWN: 0, Health.DEGRADED: 1, Health.UNKNOWN: 2, Health.OK: 3}
SORTS: dict[str, Callable[[CompoundHealth, str], Any]] = {
    "code": lambda r, _lang: r.code,
    "name": lambda r, lang: r.name(lang),
    "district": lambda r, _lang: r.district,
    "health": lambda r, _lang: (HEALTH_ORDER[r.health], -(r.alerts_open)),
    "devices": lambda r, _lang: r.devices,
    "online": lambda r, _lang: -1.0 if r.share is None else r.share,
    "alerts": lambda r, _lang: r.alerts_open,
}
SortQuery = Annotated[str, Query(pattern="^(code|name|district|health|devices|online|alerts)$")]
DirQuery = Annotated[str, Query(pattern="^(asc|desc)$")]


@dataclass(frozen=True, slots=True)
class Dot:
    """A compound on the map."""

    row: CompoundHealth
    x: float
    y: float


MAP_W, MAP_H, MAP_PAD = 640.0, 420.0, 18.0


def map_dots(rows: Sequence[CompoundHealth]) -> list[Dot]:
    """Compounds with coordinates placed on the map (equirectangular, scaled to the city's extent,
    longitude shrunk by the cosine of the latitude so distances look right)."""
    placed = [r for r in rows if r.longitude is not None and r.latitude is not None]
    if not placed:
        return []
    lons = [r.longitude for r in placed if r.longitude is not None]
    lats = [r.latitude for r in placed if r.latitude is not None]
    shrink = math.cos(math.radians(sum(lats) / len(lats)))
    span_x = max((max(lons) - min(lons)) * shrink, 1e-6)
    span_y = max(max(lats) - min(lats), 1e-6)
    scale = min((MAP_W - 2 * MAP_PAD) / span_x, (MAP_H - 2 * MAP_PAD) / span_y)
    off_x = (MAP_W - span_x * scale) / 2
    off_y = (MAP_H - span_y * scale) / 2
    return [
        Dot(r, off_x + (r.longitude - min(lons)) * shrink * scale, MAP_H - off_y - (r.latitude - min(lats)) * scale)  # type: ignore[operator]
        for r in placed
    ]


def _overview(request: Request, console: Console, viewer: Any, session: Any, sort: str, direction: str,
              template: str) -> HTMLResponse:  # fmt: skip
    snapshot = console.summary.get()
    rows = city_overview(session, snapshot, viewer.scope, AlertScope(viewer.principal.role, viewer.scope))
    language = i18n.current_language()
    rows.sort(key=lambda r: SORTS[sort](r, language), reverse=direction == "desc")
    return console.render(
        request, template, viewer=viewer, rows=rows, totals=summary(rows), dots=map_dots(rows), sort=sort,
        direction=direction, kinds=KINDS, health_words=HEALTH_WORDS, map_w=MAP_W, map_h=MAP_H, page_path="/",
        as_of=snapshot.now_ms,
    )  # fmt: skip


@router.get("/")
def overview(request: Request, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                   sort: SortQuery = "health", dir: DirQuery = "asc") -> HTMLResponse:  # fmt: skip
    """The city overview page."""
    return _overview(request, console, viewer, session, sort, dir, "overview.html")


@router.get("/overview/live")
def overview_live(request: Request, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                        sort: SortQuery = "health", dir: DirQuery = "asc") -> HTMLResponse:  # fmt: skip
    """The overview's live part (figures, map, table), polled by the page."""
    return _overview(request, console, viewer, session, sort, dir, "_overview_live.html")
