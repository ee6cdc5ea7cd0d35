"""Where a worker learns the compounds (codes and locations): the asset registry, or a ledger.

``sitewatch analytics run`` reads the registry's database (``database.url``, through
``sitewatch.assets``, below every component) by default, and re-reads it every
``analytics.sites_refresh_s`` so that a compound added later is picked up; ``--ledger PATH`` reads the
compounds sheet of a ledger instead (an .xlsx file or a folder of CSV files, e.g. ``simulate city``
output), once. A compound without a location gets the city's default (Changchun) and a warning:
its day/night rules then use that latitude.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings

log = logging.getLogger(__name__)

DEFAULT_LATITUDE, DEFAULT_LONGITUDE = 43.88, 125.32  # the generated city (Changchun)


@dataclass(frozen=True, slots=True)
class CompoundPlace:
    """A compound's code and location."""

    code: str
    latitude: float
    longitude: float


def _place(code: str, latitude: object, longitude: object) -> CompoundPlace:
    try:
        lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError
    except (TypeError, ValueError):
        log.warning("compound %s has no usable location; day/night rules use %s, %s",
                    code, DEFAULT_LATITUDE, DEFAULT_LONGITUDE)  # fmt: skip
        lat, lon = DEFAULT_LATITUDE, DEFAULT_LONGITUDE
    return CompoundPlace(code, lat, lon)


def from_registry(settings: Settings) -> dict[str, CompoundPlace]:
    """Every compound of the asset registry (its database)."""
    from ..assets.db import create_engine_for, transaction
    from ..assets.models import Compound

    engine = create_engine_for(settings)
    try:
        with transaction(engine) as session:
            rows = session.query(Compound.code, Compound.latitude, Compound.longitude).all()
    finally:
        engine.dispose()
    return {code: _place(code, lat, lon) for code, lat, lon in rows}


def from_ledger(path: Path) -> dict[str, CompoundPlace]:
    """The compounds sheet of a ledger; raises ValueError with the reason when it has none."""
    from ..assets.reader import read_ledger
    from ..assets.report import Issues

    issues = Issues()
    sheets = read_ledger(path, issues)
    sheet = sheets.get("compounds")
    if sheet is None or not sheet.rows:
        raise ValueError(f"{path}: no compounds sheet with rows")
    out: dict[str, CompoundPlace] = {}
    for _row, cells in sheet.rows:
        code = str(cells.get("code") or "").strip()
        if code:
            out[code] = _place(code, cells.get("latitude"), cells.get("longitude"))
    if not out:
        raise ValueError(f"{path}: the compounds sheet names no compound code")
    return out


@dataclass(frozen=True, slots=True)
class DevicePlace:
    """Where a device is within its compound: building number ("" for none) and, for a water
    meter, its scope (``household`` or ``building``; "" when unknown). The detectors' leak
    function uses them to compare a household meter with its peers and to drop a building meter's
    echo of a household leak."""

    building: str
    scope: str


def devices_from_registry(settings: Settings) -> dict[str, DevicePlace]:
    """Every device bound to an asset in the registry (active bindings)."""
    from ..assets.db import create_engine_for, transaction
    from ..assets.models import Asset, Building, DeviceBinding

    engine = create_engine_for(settings)
    try:
        with transaction(engine) as session:
            rows = (
                session.query(DeviceBinding.device_id, Building.building_no, Asset.meter_scope)
                .join(Asset, DeviceBinding.asset_id == Asset.id)
                .outerjoin(Building, Asset.building_id == Building.id)
                .filter(DeviceBinding.valid_to.is_(None))
                .all()
            )
    finally:
        engine.dispose()
    return {device: DevicePlace(str(building or ""), str(scope or "")) for device, building, scope in rows}


def devices_from_ledger(path: Path) -> dict[str, DevicePlace]:
    """The devices of a ledger's assets sheet (empty when it has none)."""
    from ..assets.reader import read_ledger
    from ..assets.report import Issues

    sheet = read_ledger(path, Issues()).get("assets")
    out: dict[str, DevicePlace] = {}
    for _row, cells in sheet.rows if sheet is not None else []:
        device = str(cells.get("device_id") or "").strip()
        if device:
            out[device] = DevicePlace(
                str(cells.get("building_no") or ""), str(cells.get("meter_scope") or "")
            )
    return out
