"""Ledger export: the registry written back as a ledger that the importer reads unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, aliased

from .models import (
    Asset,
    Building,
    City,
    Community,
    Compound,
    Contract,
    ContractKind,
    Crew,
    CrewMember,
    DeviceBinding,
    District,
    Organisation,
    Street,
)
from .workbook import HeaderStyle, write_csv_dir, write_xlsx
from .writer import format_members

Ledger = dict[str, list[dict[str, Any]]]


def export_ledger(engine: Engine, path: Path, style: HeaderStyle = HeaderStyle.ZH) -> dict[str, int]:
    """Write the registry to ``path`` (.xlsx, or a directory of CSVs); return rows per sheet."""
    with Session(engine) as session:
        ledger = read_registry(session)
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        write_xlsx(ledger, path, style)
    else:
        write_csv_dir(ledger, path, style)
    return {name: len(rows) for name, rows in ledger.items()}


def read_registry(session: Session) -> Ledger:
    """Every sheet's records, in the ledger's column keys."""
    orgs = {o.id: o.name for o in session.scalars(select(Organisation))}
    out: Ledger = {
        "organisations": [
            {"name": o.name, "type": o.type, "contact": o.contact, "phone": o.phone}
            for o in session.scalars(select(Organisation).order_by(Organisation.name))
        ],
        "compounds": list(_compounds(session, orgs)),
    }
    codes = {i: c for i, c in session.execute(select(Compound.id, Compound.code))}
    buildings = session.scalars(select(Building).order_by(Building.compound_id, Building.id)).all()
    out["buildings"] = [
        {"compound_code": codes[b.compound_id], "building_no": b.building_no, "floors": b.floors,
         "units": b.units, "households": b.households, "year_built": b.year_built}
        for b in buildings
    ]  # fmt: skip
    building_no = {b.id: b.building_no for b in buildings}
    active = select(DeviceBinding.asset_id, DeviceBinding.device_id).where(DeviceBinding.valid_to.is_(None))
    devices = {asset_id: device for asset_id, device in session.execute(active)}
    skip = {"id", "compound_id", "building_id", "owner_org_id", "maintainer_org_id"}
    columns = [c for c in Asset.__table__.c if c.name not in skip]
    assets = []
    for row in session.execute(select(Asset.__table__).order_by(Asset.id)).mappings():
        rec = {c.name: row[c.name] for c in columns}
        rec["compound_code"] = codes[row["compound_id"]]
        rec["building_no"] = building_no.get(row["building_id"]) if row["building_id"] else None
        rec["owner_org"] = orgs.get(row["owner_org_id"]) if row["owner_org_id"] else None
        rec["maintainer_org"] = orgs.get(row["maintainer_org_id"]) if row["maintainer_org_id"] else None
        rec["device_id"] = devices.get(row["id"])
        assets.append(rec)
    out["assets"] = assets
    members: dict[int, list[tuple[str, str | None]]] = {}
    for m in session.scalars(select(CrewMember).order_by(CrewMember.crew_id, CrewMember.position)):
        members.setdefault(m.crew_id, []).append((m.name, m.phone))
    crews = session.scalars(select(Crew).order_by(Crew.crew_code)).all()
    out["crews"] = [
        {"crew_code": c.crew_code, "org": orgs[c.org_id], "name": c.name, "leader": c.leader, "phone": c.phone,
         "wecom_id": c.wecom_id, "dingtalk_id": c.dingtalk_id, "members": format_members(members.get(c.id, []))}
        for c in crews
    ]  # fmt: skip
    crew_code = {c.id: c.crew_code for c in crews}
    kinds: dict[int, list[str]] = {}
    for cid, kind in session.execute(
        select(ContractKind.contract_id, ContractKind.kind).order_by(ContractKind.kind)
    ):
        kinds.setdefault(cid, []).append(kind)
    out["contracts"] = [
        {"contract_no": k.contract_no, "org": orgs[k.org_id], "compound_code": codes[k.compound_id],
         "kinds": ",".join(kinds.get(k.id, [])), "crew_code": crew_code.get(k.crew_id) if k.crew_id else None,
         "start_date": k.start_date, "end_date": k.end_date, "response_minutes": k.response_minutes,
         "arrival_minutes": k.arrival_minutes}
        for k in session.scalars(select(Contract).order_by(Contract.contract_no))
    ]  # fmt: skip
    return out


def _compounds(session: Session, orgs: dict[int, str]) -> Iterator[dict[str, Any]]:
    d, s, cm, ci = aliased(District), aliased(Street), aliased(Community), aliased(City)
    query = (
        select(Compound, cm.name, s.name, d.name, d.code, ci.name)
        .join(cm, Compound.community_id == cm.id)
        .join(s, cm.street_id == s.id)
        .join(d, s.district_id == d.id)
        .join(ci, d.city_id == ci.id)
        .order_by(Compound.code)
    )
    for c, community, street, district, district_code, city in session.execute(query):
        yield {
            "code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "city": city, "district": district,
            "district_code": district_code, "street": street, "community": community, "address": c.address,
            "longitude": c.longitude, "latitude": c.latitude, "year_built": c.year_built,
            "buildings": c.buildings_count, "households": c.households, "floor_area_m2": c.floor_area_m2,
            "renovation_year": c.renovation_year, "renovation_batch": c.renovation_batch,
            "renovation_content": c.renovation_content, "management_mode": c.management_mode,
            "manager_org": orgs.get(c.manager_org_id) if c.manager_org_id else None,
        }  # fmt: skip
