"""What the console's pages show, read from the registry, alerting and the store.

The city overview asks the store one grouped question per device kind (devices that reported within
two of the kind's reporting intervals, counted per compound), the gateways' state once, and the
registry and alerting one grouped SQL query each: its cost does not grow with a query per device.
The store's part is the same for every viewer, so :class:`CitySummary` asks it off the request path,
every few seconds, and pages read the newest answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..alerts.actions import AlertScope
from ..alerts.models import OPEN_STATES, Alert
from ..assets.models import Asset as AssetRow
from ..assets.models import Building, Community, Compound, District, Organisation, Street
from ..contract import DeviceKind
from ..i18n import N_
from ..store import Aggregation, Combine, GroupQuery, Store
from ..web.principal import CompoundScope

log = logging.getLogger(__name__)
T = TypeVar("T")
MINUTE = 60_000
# The metric every reading of a kind carries, and how long a device may stay silent and still count
# as reporting: two of its reporting intervals and a minute (docs/simulators.md gives the intervals).
PRESENCE: Mapping[DeviceKind, tuple[str, int]] = {
    DeviceKind.ELEVATOR: ("run_state", 3 * MINUTE),  # polled every 60 s
    DeviceKind.CAMERA: ("online", 3 * MINUTE),  # health check every 60 s
    DeviceKind.CHARGER: ("status", 3 * MINUTE),  # MeterValues every 60 s
    DeviceKind.STREETLIGHT: ("lamp_on", 11 * MINUTE),  # every 300 s
    DeviceKind.WATER_METER: ("volume_register", 31 * MINUTE),  # household meters every 900 s
}
KINDS = tuple(PRESENCE)


class Health(StrEnum):
    """A compound's state at a glance (the map's and the table's colour)."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


HEALTH_WORDS = {
    Health.OK: N_("healthy"), Health.DEGRADED: N_("degraded"), Health.DOWN: N_("down"),
    Health.UNKNOWN: N_("no data"),
}  # fmt: skip
DOWN_SHARE = 0.5  # fewer devices reporting than this share: down
DEGRADED_SHARE = 0.9  # fewer than this: degraded


@dataclass
class CompoundHealth:
    """One compound of the overview."""

    code: str
    name_zh: str
    name_en: str | None
    district: str
    manager: str | None
    longitude: float | None
    latitude: float | None
    registered: dict[str, int] = field(default_factory=dict)  # devices per kind in the registry
    reporting: dict[str, int] = field(default_factory=dict)  # devices per kind heard from recently
    gateway_online: bool | None = None  # None: no gateway state stored
    alerts_open: int = 0
    alerts_critical: int = 0

    def name(self, language: str) -> str:
        """The compound's name in ``language`` (the Chinese one when it has no English one)."""
        return (self.name_en or self.name_zh) if language == "en" else self.name_zh

    @property
    def devices(self) -> int:
        """Registered devices (every kind but gateways)."""
        return sum(self.registered.values())

    @property
    def online(self) -> int:
        """Registered devices heard from recently."""
        return sum(min(n, self.registered.get(k, n)) for k, n in self.reporting.items())

    @property
    def share(self) -> float | None:
        """Share of the registered devices that reported (None without registered devices)."""
        return self.online / self.devices if self.devices else None

    @property
    def health(self) -> Health:
        """Down: the gateway is offline, a critical alert is open or under half the devices report;
        degraded: an alert is open or under 90% report; healthy otherwise."""
        share = self.share
        if share is None or (self.online == 0 and self.gateway_online is None):
            return Health.UNKNOWN
        if self.gateway_online is False or self.alerts_critical or share < DOWN_SHARE:
            return Health.DOWN
        if self.alerts_open or share < DEGRADED_SHARE:
            return Health.DEGRADED
        return Health.OK


def visible_compounds(session: Session, scope: CompoundScope) -> list[CompoundHealth]:
    """The compounds in scope with their district and manager, by code."""
    statement = (
        select(Compound.code, Compound.name_zh, Compound.name_en, District.name, Organisation.name,
               Compound.longitude, Compound.latitude)
        .join(Community, Compound.community_id == Community.id)
        .join(Street, Community.street_id == Street.id)
        .join(District, Street.district_id == District.id)
        .outerjoin(Organisation, Compound.manager_org_id == Organisation.id)
        .order_by(Compound.code)
    )  # fmt: skip
    if not scope.everything:
        statement = statement.where(Compound.code.in_(sorted(scope.codes)))
    return [CompoundHealth(*row) for row in session.execute(statement)]


def registered_devices(session: Session, scope: CompoundScope, compound: str | None = None) -> dict[str, dict[str, int]]:
    """Assets per compound and kind (gateways left out), within the scope's kinds."""
    statement = (
        select(Compound.code, AssetRow.kind, func.count())
        .join(Compound, AssetRow.compound_id == Compound.id)
        .where(AssetRow.kind != DeviceKind.GATEWAY.value)
        .group_by(Compound.code, AssetRow.kind)
    )
    if compound is not None:
        statement = statement.where(Compound.code == compound)
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for code, kind, count in session.execute(statement):
        if scope.sees(code, kind):
            out[code][kind] = int(count)
    return out


def at_once(store: Store, *work: Callable[[], T]) -> list[T]:
    """The answers of ``work``, asked at once from a store that serves several requests together
    (InfluxDB: each question is a round trip), one after the other from one that does not."""
    if store.concurrent_writes <= 1 or len(work) < 2:
        return [w() for w in work]
    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="console-query") as pool:
        return list(pool.map(lambda w: w(), work))


def reporting_devices(store: Store, now_ms: int, compound: str | None = None) -> dict[str, dict[str, int]]:
    """Devices per compound and kind that reported within their kind's presence window: one grouped
    store query per kind, never one per device."""
    queries = [
        GroupQuery((metric,), now_ms - window_ms, now_ms + 1, group_by=("compound",), kind=kind,
                   aggregation=Aggregation.COUNT, combine=Combine.COUNT, compound=compound)
        for kind, (metric, window_ms) in PRESENCE.items()
    ]  # fmt: skip
    answers = at_once(store, *(lambda q=q: store.aggregate(q) for q in queries))
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for query, points in zip(queries, answers, strict=True):
        assert query.kind is not None
        for point in points:
            out[point.group[0]][query.kind.value] = point.devices
    return out


def open_alerts(session: Session, scope: AlertScope, compound: str | None = None) -> dict[str, tuple[int, int]]:
    """(open, critical open) alerts per compound in scope."""
    statement = (
        select(Alert.compound, Alert.severity, func.count())
        .where(scope.visible(), Alert.state.in_([s.value for s in OPEN_STATES]))
        .group_by(Alert.compound, Alert.severity)
    )
    if compound is not None:
        statement = statement.where(Alert.compound == compound)
    out: dict[str, tuple[int, int]] = {}
    for code, severity, count in session.execute(statement):
        total, critical = out.get(code, (0, 0))
        out[code] = (total + int(count), critical + (int(count) if severity == "critical" else 0))
    return out


def gateway_state(store: Store, compound: str | None = None) -> dict[str, bool]:
    """Whether each compound's gateways are all online (compounds with a stored birth or death)."""
    out: dict[str, bool] = {}
    for gateway in store.gateways(compound=compound):
        out[gateway.compound] = out.get(gateway.compound, True) and gateway.online
    return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The store's answers for the whole city at one moment."""

    now_ms: int
    reporting: dict[str, dict[str, int]]  # compound -> kind -> devices reporting
    gateways: dict[str, bool]  # compound -> all its gateways online
    took_s: float  # how long the store took to answer
    made_at: float  # time.monotonic() when made


class CitySummary:
    """The city's reporting devices and gateway state, asked of the store by :meth:`refresh` (the web
    application runs it every ``interval_s`` off the event loop) and read by every page; a page that
    finds it missing or older than three intervals asks the store itself."""

    def __init__(self, store: Callable[[], Store], clock: Callable[[], int], interval_s: float) -> None:
        self._store = store
        self._clock = clock
        self.interval_s = interval_s
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def refresh(self) -> Snapshot:
        """Ask the store now (one refresh at a time; a caller that waited gets the fresh answer)."""
        asked = time.monotonic()
        with self._lock:
            if self._snapshot is not None and self._snapshot.made_at >= asked:
                return self._snapshot
            began = time.perf_counter()
            store = self._store()
            now = self._clock()
            reporting, gateways = at_once(store, lambda: reporting_devices(store, now), lambda: gateway_state(store))
            self._snapshot = Snapshot(now, reporting, gateways, time.perf_counter() - began, time.monotonic())  # type: ignore[arg-type]
            return self._snapshot

    def run(self) -> None:
        """The periodic refresh: a failure is logged, and pages ask the store themselves meanwhile."""
        try:
            self.refresh()
        except Exception:
            log.exception("refreshing the city summary failed")

    def get(self) -> Snapshot:
        """The newest snapshot, made now when there is none or it is older than three intervals."""
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - snapshot.made_at > 3 * self.interval_s:
            return self.refresh()
        return snapshot


def city_overview(session: Session, snapshot: Snapshot, scope: CompoundScope,
                  alert_scope: AlertScope) -> list[CompoundHealth]:  # fmt: skip
    """Every compound in scope with its devices, reporting devices, gateway and open alerts."""
    rows = visible_compounds(session, scope)
    registered = registered_devices(session, scope)
    reporting = snapshot.reporting
    gateways = snapshot.gateways
    alerts = open_alerts(session, alert_scope)
    for row in rows:
        row.registered = registered.get(row.code, {})
        row.reporting = {k: n for k, n in reporting.get(row.code, {}).items() if scope.sees(row.code, k)}
        row.gateway_online = gateways.get(row.code)
        row.alerts_open, row.alerts_critical = alerts.get(row.code, (0, 0))
    return rows


def summary(rows: Iterable[CompoundHealth]) -> dict[str, int]:
    """City totals: compounds per health, devices, devices reporting, open alerts."""
    out = {"compounds": 0, "devices": 0, "online": 0, "alerts": 0, **{h.value: 0 for h in Health}}
    for row in rows:
        out["compounds"] += 1
        out["devices"] += row.devices
        out["online"] += row.online
        out["alerts"] += row.alerts_open
        out[row.health.value] += 1
    return out


def buildings_of(session: Session, compound_id: int) -> list[tuple[Building, dict[str, int]]]:
    """A compound's buildings with their assets per kind."""
    buildings = list(session.scalars(select(Building).where(Building.compound_id == compound_id)))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for building_id, kind, count in session.execute(
        select(AssetRow.building_id, AssetRow.kind, func.count())
        .where(AssetRow.compound_id == compound_id, AssetRow.building_id.is_not(None))
        .group_by(AssetRow.building_id, AssetRow.kind)
    ):
        if building_id is not None:
            counts[building_id][kind] = int(count)
    buildings.sort(key=lambda b: (len(b.building_no), b.building_no))
    return [(b, counts.get(b.id, {})) for b in buildings]
