"""Ledger import: read, validate every row, then upsert everything in one transaction.

All or nothing: any error (a bad cell, an unknown reference, a database conflict) rolls the whole
import back. Re-importing the same ledger changes nothing (upsert on the natural keys of
:mod:`sitewatch.assets.ledger`). Rows of the database absent from the ledger are kept, never deleted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from ..contract import device_belongs_to, is_code
from ..contract.ownership import clashing_pairs
from ..contract.topics import DEVICE_LOCAL_PATTERN
from ..text import name_key
from .codes import lock_codes
from .ledger import SHEETS
from .models import Asset, Building, Compound, Crew, Organisation
from .reader import RawSheet, ReadLimits, read_ledger
from .report import ImportReport, Issues
from .rows import parse_sheet
from .writer import write_ledger

Records = list[tuple[int, dict[str, Any]]]
ProgressFn = Callable[[str, int, int | None], None]
_LOCAL_RE = re.compile(DEVICE_LOCAL_PATTERN)  # fullmatch: "$" would allow a final newline


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How an import runs."""

    dry_run: bool = False
    limits: ReadLimits = field(default_factory=ReadLimits)


def import_ledger(
    engine: Engine, path: Path, options: ImportOptions = ImportOptions(),
    progress: ProgressFn | None = None,
) -> ImportReport:  # fmt: skip
    """Import the ledger at ``path``; the report says what changed or why nothing did."""
    started = time.perf_counter()
    issues = Issues()
    report = ImportReport(issues, dry_run=options.dry_run)

    def read_progress(n: int) -> None:
        if progress is not None:
            progress("read", n, None)

    raw = read_ledger(Path(path), issues, options.limits, read_progress)
    parsed = {name: parse_sheet(sheet, issues) for name, sheet in raw.items()}
    if not parsed:
        report.seconds = time.perf_counter() - started
        return report
    with Session(engine) as session, session.begin():
        _check_keys(parsed, issues)
        _check_references(session, parsed, raw, issues)
        if issues.errors == 0:
            try:
                report.changes = write_ledger(session, parsed, raw, progress)
                session.flush()
            except IntegrityError as exc:
                issues.error("database_conflict", reason=str(exc.orig).splitlines()[0][:300])
            except DBAPIError as exc:  # e.g. a value PostgreSQL refuses that SQLite would keep
                issues.error("database_conflict", reason=str(exc.orig).splitlines()[0][:300])
        if issues.errors or options.dry_run:
            session.rollback()
        else:
            report.committed = True
    report.seconds = time.perf_counter() - started
    return report


def _check_keys(parsed: dict[str, Records], issues: Issues) -> None:
    """Natural keys must be unique within the ledger; codes must be usable in topics."""
    for name, records in parsed.items():
        sheet = SHEETS[name]
        first: dict[tuple[Any, ...], int] = {}
        keep: Records = []
        for row_no, rec in records:
            key = tuple(_same(name, k, rec[k]) for k in sheet.key)
            if key in first:
                issues.error("duplicate_key", name, row_no, sheet.key[-1], first=first[key],
                             key="/".join(str(k) for k in key))  # fmt: skip
                continue
            first[key] = row_no
            keep.append((row_no, rec))
        parsed[name] = keep
    for row_no, rec in parsed.get("compounds", []):
        if not is_code(rec["code"]):
            issues.error("bad_code", "compounds", row_no, "code", value=rec["code"][:60])


def _same(sheet: str, key: str, value: Any) -> Any:
    """The form in which two natural keys are the same: organisation names by their NFKC key,
    compound codes regardless of case."""
    if sheet == "organisations" and key == "name":
        return name_key(value)
    if sheet == "compounds" and key == "code":
        return str(value).lower()
    return value


class _Names(set[str]):
    """Organisation names, matched by :func:`~sitewatch.text.name_key` (any spelling of a name)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name_key(name))


def _check_codes(session: Session, records: Records, issues: Issues) -> set[str]:
    """Compound codes of the ledger and the database; a new code that clashes with another is an
    error (device ids would be ambiguous; see sitewatch.contract.ownership)."""
    known = set(session.scalars(select(Compound.code)))
    new = {rec["code"]: row for row, rec in records if rec["code"] not in known}
    if new:
        lock_codes(session)  # no other writer adds a clashing code before this import commits
        known = set(session.scalars(select(Compound.code)))
    for a, b in clashing_pairs([*sorted(known), *(c for c in new if c not in known)]):
        code, other = (b, a) if b in new else (a, b)
        if code in new:
            issues.error("code_clash", "compounds", new[code], "code", value=code[:60], other=other[:60])
    return known | set(new)


def _check_references(
    session: Session, parsed: dict[str, Records], raw: dict[str, RawSheet], issues: Issues
) -> None:
    """Every name or code a row refers to exists in the ledger or in the database."""
    orgs = _Names(name_key(r["name"]) for _, r in parsed.get("organisations", []))
    orgs |= {name_key(n) for n in session.scalars(select(Organisation.name))}
    compounds = _check_codes(session, parsed.get("compounds", []), issues)
    units: dict[tuple[str, str], int] = {
        (code, no): n
        for code, no, n in session.execute(
            select(Compound.code, Building.building_no, Building.units).join(Building.compound)
        )
    }
    units.update({(r["compound_code"], r["building_no"]): r["units"] for _, r in parsed.get("buildings", [])})
    crews = {r["crew_code"] for _, r in parsed.get("crews", [])} | set(
        session.scalars(select(Crew.crew_code))
    )

    def need(sheet: str, row: int, column: str, value: Any, known: Any, zh: str, en: str) -> bool:
        if value is not None and value not in known:
            issues.error("unknown_ref", sheet, row, column, what_zh=zh, what_en=en, value=str(value)[:60])
            return False
        return True

    for row, rec in parsed.get("compounds", []):
        need("compounds", row, "manager_org", rec.get("manager_org"), orgs, "单位", "organisation")
    for row, rec in parsed.get("buildings", []):
        need("buildings", row, "compound_code", rec["compound_code"], compounds, "小区", "compound")
    for row, rec in parsed.get("crews", []):
        need("crews", row, "org", rec["org"], orgs, "单位", "organisation")
    for row, rec in parsed.get("contracts", []):
        need("contracts", row, "org", rec["org"], orgs, "单位", "organisation")
        need("contracts", row, "compound_code", rec["compound_code"], compounds, "小区", "compound")
        need("contracts", row, "crew_code", rec.get("crew_code"), crews, "班组", "crew")
        if rec.get("end_date") is not None and rec["end_date"] < rec["start_date"]:
            issues.error("date_order", "contracts", row, "end_date")
    _check_assets(
        session, parsed.get("assets", []), raw.get("assets"), need, (orgs, compounds, units), issues
    )


def _check_assets(
    session: Session, records: Records, raw: RawSheet | None, need: Callable[..., bool],
    known: tuple[_Names, set[str], dict[tuple[str, str], int]], issues: Issues,
) -> None:  # fmt: skip
    """Asset references, unit numbers, unique serial numbers and device ids."""
    orgs, compounds, units = known
    serial_owner: dict[str, str] = {}
    device_owner: dict[str, str] = {}
    check_serials = raw is not None and "serial_no" in raw.present
    if check_serials:
        codes = {r["asset_code"] for _, r in records}
        for code, serial in session.execute(
            select(Asset.asset_code, Asset.serial_no).where(Asset.serial_no.is_not(None))
        ):
            if code not in codes and serial is not None:
                serial_owner[serial] = code
    for row, rec in records:
        compound = rec["compound_code"]
        if not need("assets", row, "compound_code", compound, compounds, "小区", "compound"):
            continue
        building = rec.get("building_no")
        if building is not None:
            need("assets", row, "building_no", (compound, building), units, "楼栋", "building")
        unit = rec.get("unit_no")
        if unit is not None:
            rec["unit_no"] = unit = re.sub(r"\s*(单元|unit)\s*$", "", unit, flags=re.I) or unit
            n = units.get((compound, building or ""))
            if n is not None and unit.isdigit() and not 1 <= int(unit) <= n:
                issues.error(
                    "unit_out_of_range", "assets", row, "unit_no", value=unit, building=building, units=n
                )
        for column in ("owner_org", "maintainer_org"):
            need("assets", row, column, rec.get(column), orgs, "单位", "organisation")
        serial = rec.get("serial_no")
        if check_serials and serial is not None:
            if serial in serial_owner:
                issues.error("duplicate_serial", "assets", row, "serial_no", value=serial[:60],
                             other=serial_owner[serial])  # fmt: skip
            else:
                serial_owner[serial] = rec["asset_code"]
        device = rec.get("device_id")
        if device is not None:
            if not (device_belongs_to(device, compound) and _LOCAL_RE.fullmatch(device, len(compound) + 1)):
                issues.error("bad_device_id", "assets", row, "device_id", value=device[:60])
            elif device in device_owner:
                issues.error("duplicate_device", "assets", row, "device_id", value=device[:60],
                             other=device_owner[device])  # fmt: skip
            else:
                device_owner[device] = rec["asset_code"]


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows per registry table (used to show that a refused import changed nothing)."""
    from sqlalchemy import func

    from .models import Base

    with engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in Base.metadata.tables.items()
        }
