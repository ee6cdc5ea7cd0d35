"""Who owns a problem, from the registry: the asset's maintenance contract names the crew; the
compound names its property manager and district; the crew has members and a leader.

Alerts copy what they need as labels when they fire, so their history outlives registry edits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..assets.models import (
    Asset,
    Building,
    Community,
    Compound,
    Contract,
    ContractKind,
    Crew,
    DeviceBinding,
    District,
    Organisation,
    Street,
)

LABEL_NAMES = (
    "compound", "compound_name", "compound_name_en", "district", "street", "community", "building",
    "device", "asset", "kind", "fault", "source", "severity", "crew", "crew_name", "maintainer",
    "manager", "gateway", "alertname",
)  # fmt: skip


def fingerprint(compound: str, device: str | None, fault: str | None, source: str) -> str:
    """The identity of a problem: one device (or gateway, or compound) and one fault type, whatever
    rule or detector found it (a charger's Faulted status and its fault event are one broken
    charger, one alert). A finding that names no fault type (an anomaly of no known type) is its
    source's own problem: its identity keeps the source."""
    parts = (compound, device or "", fault) if fault else (compound, device or "", "", source)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Route:
    """What the registry says about a device: where it is and who looks after it."""

    known_compound: bool = False
    known_device: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    crew: str | None = None  # crew code
    crew_leader: str | None = None
    crew_leader_phone: str | None = None
    members: tuple[tuple[str, str | None], ...] = ()


ROUTE_TTL_S = 60.0  # a registry change reaches routing within this time
_routes: dict[tuple[str, str, str | None, str, dt.date], tuple[float, Route]] = {}
# what a compound and its contract for a kind say (the same for every device of that kind there):
# a storm of new devices of one compound asks the registry for each device's asset only
_owners: dict[tuple[str, str, str, dt.date], tuple[float, _Owner | None]] = {}


@dataclass(frozen=True, slots=True)
class _Owner:
    """The compound's labels, and the crew of its contract for one kind (None: no contract)."""

    labels: dict[str, str]
    maintainer: str | None = None  # the contract's organisation
    crew: Route | None = None  # the crew's part of a route (plain values: it outlives the session)


def _remembered(cache: dict[Any, tuple[float, Any]], key: Any, make: Callable[[], Any]) -> Any:
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < ROUTE_TTL_S:
        return hit[1]
    value = make()
    if len(cache) >= 100_000:
        cache.clear()
    cache[key] = (time.monotonic(), value)
    return value


def lookup(session: Session, compound: str, device: str | None, kind: str, today: dt.date) -> Route:
    """The route of a problem on ``device`` (or on the compound when None) of ``compound``
    (remembered for ``ROUTE_TTL_S`` per database: a storm of new alerts asks the registry once each)."""
    url = str(session.get_bind().engine.url)
    route: Route = _remembered(
        _routes,
        (url, compound, device, kind, today),
        lambda: _lookup(session, url, compound, device, kind, today),
    )
    return route


def warm(session: Session, wanted: Iterable[tuple[str, str | None, str]], today: dt.date) -> None:
    """Remember the routes of many (compound, device, kind) at once: the assets of the devices not
    remembered yet come in one query, not one each (an outage raises thousands of new alerts)."""
    url = str(session.get_bind().engine.url)
    now = time.monotonic()
    missing = set()
    for compound, device, kind in wanted:
        hit = _routes.get((url, compound, device, kind, today))
        if device is not None and (hit is None or now - hit[0] >= ROUTE_TTL_S):
            missing.add((compound, device, kind))
    if len(missing) < 2:
        return
    assets: dict[str, Asset] = {}
    devices = sorted({device for _, device, _ in missing})
    for start in range(0, len(devices), 500):
        rows = session.execute(
            select(DeviceBinding.device_id, Asset)
            .join(Asset, Asset.id == DeviceBinding.asset_id)
            .where(
                DeviceBinding.device_id.in_(devices[start : start + 500]), DeviceBinding.valid_to.is_(None)
            )
        )
        assets.update((str(device), asset) for device, asset in rows)
    for compound, device, kind in missing:
        route = _lookup(session, url, compound, device, kind, today, found=(assets.get(device or ""),))
        if len(_routes) >= 100_000:
            _routes.clear()
        _routes[(url, compound, device, kind, today)] = (time.monotonic(), route)


def _owner(session: Session, compound: str, kind: str, today: dt.date) -> _Owner | None:
    row = session.execute(
        select(Compound, Community.name, Street.name, District.name, Organisation.name)
        .join(Community, Community.id == Compound.community_id)
        .join(Street, Street.id == Community.street_id)
        .join(District, District.id == Street.district_id)
        .outerjoin(Organisation, Organisation.id == Compound.manager_org_id)
        .where(Compound.code == compound)
    ).first()
    if row is None:
        return None
    comp, community, street, district, manager = row
    labels = {
        "compound_name": comp.name_zh,
        "district": district,
        "street": street,
        "community": community,
    }
    if comp.name_en:
        labels["compound_name_en"] = comp.name_en
    if manager:
        labels["manager"] = manager
    contract = session.execute(
        select(Contract)
        .join(ContractKind, ContractKind.contract_id == Contract.id)
        .where(
            Contract.compound_id == comp.id,
            ContractKind.kind == kind,
            Contract.start_date <= today,
            or_(Contract.end_date.is_(None), Contract.end_date >= today),
        )
        .order_by(Contract.start_date.desc())
        .limit(1)
    ).scalar_one_or_none()
    if contract is None:
        return _Owner(labels)
    crew: Crew | None = contract.crew
    if crew is None:
        return _Owner(labels, contract.org.name)
    members = tuple((m.name, m.phone) for m in crew.members)
    crew_route = Route(
        labels={"crew": crew.crew_code, "crew_name": crew.name},
        crew=crew.crew_code,
        crew_leader=crew.leader,
        crew_leader_phone=crew.phone,
        members=members,
    )
    return _Owner(labels, contract.org.name, crew_route)


def _lookup(
    session: Session, url: str, compound: str, device: str | None, kind: str, today: dt.date,
    found: tuple[Asset | None] | None = None,
) -> Route:  # fmt: skip
    """The route; ``found`` holds the device's asset when the caller already asked for it."""
    labels: dict[str, str] = {}
    asset = found[0] if found is not None else None
    if device is not None and found is None:
        asset = session.execute(
            select(Asset)
            .join(DeviceBinding, DeviceBinding.asset_id == Asset.id)
            .where(DeviceBinding.device_id == device, DeviceBinding.valid_to.is_(None))
        ).scalar_one_or_none()
    if asset is not None:
        kind = asset.kind
        labels["asset"] = asset.name or asset.asset_code
        if asset.building_id is not None:
            building = session.get(Building, asset.building_id)
            if building is not None:
                labels["building"] = building.building_no
        if asset.maintainer_org is not None:
            labels["maintainer"] = asset.maintainer_org.name
    owner: _Owner | None = _remembered(
        _owners, (url, compound, kind, today), lambda: _owner(session, compound, kind, today)
    )
    if owner is None:
        return Route()
    labels = {**owner.labels, **labels}
    if owner.maintainer is not None and "maintainer" not in labels:
        labels["maintainer"] = owner.maintainer
    crew = owner.crew
    if crew is None:
        return Route(True, asset is not None, labels)
    return Route(True, asset is not None, {**labels, **crew.labels}, crew.crew, crew.crew_leader,
                 crew.crew_leader_phone, crew.members)  # fmt: skip


def capped(labels: dict[str, str], max_chars: int) -> dict[str, str]:
    """Labels with every value cut to ``max_chars`` characters and only known names kept."""
    return {k: str(v)[:max_chars] for k, v in labels.items() if k in LABEL_NAMES and v is not None}
