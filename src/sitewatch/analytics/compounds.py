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
