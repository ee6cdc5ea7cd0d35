"""Bulk upserts of validated ledger records (one executemany per table, never a flush per row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session

from ..text import name_key
from .models import (
    Asset,
    Base,
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
    Unit,
)
from .reader import RawSheet
from .report import SheetChanges

Records = list[tuple[int, dict[str, Any]]]
ProgressFn = Callable[[str, int, int | None], None]

# ledger column key -> database column, where they differ
COMPOUND_COLUMNS = {
    "buildings": "buildings_count",
    "manager_org": "manager_org_id",
    "community": "community_id",
}
ASSET_COLUMNS = {
    "compound_code": "compound_id", "building_no": "building_id", "owner_org": "owner_org_id",
    "maintainer_org": "maintainer_org_id",
}  # fmt: skip


class _ByNameKey(dict[str, int]):
    """Organisation ids by :func:`~sitewatch.text.name_key`, looked up by any spelling of a name."""

    def __getitem__(self, name: str) -> int:
        return super().__getitem__(name_key(name))

    def get(self, name: Any, default: Any = None) -> Any:
        return super().get(name_key(name), default)


class _Upsert:
    """Insert new rows and update changed ones of one table, keyed by a natural key."""

    def __init__(self, session: Session, model: type[Base], key: Sequence[str], chunk: int = 5000) -> None:
        self.session = session
        self.model = model
        self.table: Table = model.__table__  # type: ignore[assignment]
        self.key = tuple(key)
        self.chunk = chunk
        cols = [self.table.c.id, *(self.table.c[k] for k in self.key)]
        self.ids: dict[tuple[Any, ...], int] = {tuple(r[1:]): r[0] for r in session.execute(select(*cols))}

    def run(
        self,
        records: Iterable[dict[str, Any]],
        columns: set[str],
        progress: Callable[[int], None] | None = None,
    ) -> SheetChanges:
        """Upsert ``records`` (every column given); only ``columns`` are compared and updated."""
        records = list(records)
        changes = SheetChanges(rows=len(records))
        existing = self._existing([r for r in records if self._key(r) in self.ids], columns)
        inserts, updates = [], []
        for rec in records:
            old = existing.get(self._key(rec))
            if old is None:
                inserts.append(rec)
                continue
            diff = {c: rec[c] for c in columns if c in rec and c in old and old[c] != rec[c]}
            if diff:
                diff["id"] = old["id"]
                updates.append(diff)
        for start in range(0, len(inserts), self.chunk):
            part = inserts[start : start + self.chunk]
            self.session.execute(insert(self.table), part)
            if progress is not None:
                progress(len(part))
        for start in range(0, len(updates), self.chunk):
            part = updates[start : start + self.chunk]
            self.session.execute(update(self.model), part)
            if progress is not None:
                progress(len(part))
        if progress is not None:
            progress(len(records) - len(inserts) - len(updates))
        changes.created, changes.updated = len(inserts), len(updates)
        changes.unchanged = len(records) - len(inserts) - len(updates)
        if inserts:
            cols = [self.table.c.id, *(self.table.c[k] for k in self.key)]
            self.ids = {tuple(r[1:]): r[0] for r in self.session.execute(select(*cols))}
        return changes

    def _key(self, rec: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(rec[k] for k in self.key)

    def _existing(
        self, records: list[dict[str, Any]], columns: set[str]
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Current values of the compared columns, by natural key (only when some rows exist)."""
        if not records:
            return {}
        names = ["id", *self.key, *sorted(c for c in columns if c in self.table.c and c not in self.key)]
        rows = self.session.execute(select(*(self.table.c[n] for n in names))).all()
        k = len(self.key)
        return {tuple(r[1 : 1 + k]): dict(zip(names, r, strict=True)) for r in rows}


def _columns(raw: RawSheet | None, rename: dict[str, str] | None = None) -> set[str]:
    """Database columns the ledger sheet carries (absent columns are left as they are)."""
    present = raw.present if raw is not None else set()
    return {(rename or {}).get(k, k) for k in present}


def write_ledger(
    session: Session, parsed: dict[str, Records], raw: dict[str, RawSheet], progress: ProgressFn | None = None
) -> dict[str, SheetChanges]:
    """Upsert every sheet in dependency order; return what changed per table."""
    out: dict[str, SheetChanges] = {}

    def step(name: str) -> Callable[[int], None] | None:
        total = len(parsed.get(name, []))
        if progress is None:
            return None
        progress(f"write {name}", 0, total)
        return lambda n: progress(f"write {name}", n, total)

    orgs = _Upsert(session, Organisation, ["name_key"])  # look-alike names are one organisation
    recs: list[dict[str, Any]]
    if "organisations" in parsed:
        recs = [
            {"name_key": name_key(r["name"]), **{k: r.get(k) for k in ("name", "type", "contact", "phone")}}
            for _, r in parsed["organisations"]
        ]
        out["organisations"] = orgs.run(recs, _columns(raw.get("organisations")), step("organisations"))
    org_id = _ByNameKey({k[0]: v for k, v in orgs.ids.items()})

    compounds = _Upsert(session, Compound, ["code"])
    if "compounds" in parsed:
        community_id = _hierarchy(session, [r for _, r in parsed["compounds"]], out)
        recs = []
        for _, r in parsed["compounds"]:
            rec: dict[str, Any] = {c.name: None for c in Compound.__table__.c if c.name != "id"}
            rec.update(
                {COMPOUND_COLUMNS.get(k, k): v for k, v in r.items() if COMPOUND_COLUMNS.get(k, k) in rec}
            )
            rec["code_key"] = r["code"].lower()
            rec["community_id"] = community_id[(r["city"], r["district"], r["street"], r["community"])]
            rec["manager_org_id"] = org_id.get(r.get("manager_org")) if r.get("manager_org") else None
            recs.append(rec)
        columns = _columns(raw.get("compounds"), COMPOUND_COLUMNS) | {"community_id"}
        out["compounds"] = compounds.run(recs, columns, step("compounds"))
    compound_id = {k[0]: v for k, v in compounds.ids.items()}

    buildings = _Upsert(session, Building, ["compound_id", "building_no"])
    if "buildings" in parsed:
        recs = [
            {"compound_id": compound_id[r["compound_code"]], "building_no": r["building_no"],
             "floors": r["floors"], "units": r["units"], "households": r["households"],
             "year_built": r.get("year_built")}
            for _, r in parsed["buildings"]
        ]  # fmt: skip
        columns = _columns(raw.get("buildings"), {"compound_code": "compound_id"})
        out["buildings"] = buildings.run(recs, columns, step("buildings"))
        counts: dict[tuple[int, str], int] = {(r["compound_id"], r["building_no"]): r["units"] for r in recs}
        _sync_units(session, counts, buildings.ids)

    if "assets" in parsed:
        out.update(
            _write_assets(session, parsed["assets"], raw["assets"], org_id, compound_id, buildings.ids, step)
        )

    crews = _Upsert(session, Crew, ["crew_code"])
    if "crews" in parsed:
        recs = [
            {"crew_code": r["crew_code"], "org_id": org_id[r["org"]], "name": r["name"],
             **{k: r.get(k) for k in ("leader", "phone", "wecom_id", "dingtalk_id")}}
            for _, r in parsed["crews"]
        ]  # fmt: skip
        out["crews"] = crews.run(
            recs, _columns(raw.get("crews"), {"org": "org_id"}) - {"members"}, step("crews")
        )
        if "members" in raw["crews"].present:
            _sync_members(
                session, {crews.ids[(r["crew_code"],)]: r.get("members") for _, r in parsed["crews"]}
            )
    crew_id = {k[0]: v for k, v in crews.ids.items()}

    if "contracts" in parsed:
        contracts = _Upsert(session, Contract, ["contract_no"])
        recs = [
            {"contract_no": r["contract_no"], "org_id": org_id[r["org"]],
             "compound_id": compound_id[r["compound_code"]],
             "crew_id": crew_id[r["crew_code"]] if r.get("crew_code") else None,
             **{k: r.get(k) for k in ("start_date", "end_date", "response_minutes", "arrival_minutes")}}
            for _, r in parsed["contracts"]
        ]  # fmt: skip
        rename = {"org": "org_id", "compound_code": "compound_id", "crew_code": "crew_id"}
        out["contracts"] = contracts.run(
            recs, _columns(raw.get("contracts"), rename) - {"kinds"}, step("contracts")
        )
        _sync_kinds(session, {contracts.ids[(r["contract_no"],)]: r["kinds"] for _, r in parsed["contracts"]})
    return out


def _hierarchy(
    session: Session, compounds: list[dict[str, Any]], out: dict[str, SheetChanges]
) -> dict[tuple[str, ...], int]:
    """Create the cities, districts, streets and communities the compounds name; return community ids."""
    cities = _Upsert(session, City, ["name"])
    out["cities"] = cities.run(({"name": n} for n in sorted({c["city"] for c in compounds})), set())
    districts = _Upsert(session, District, ["city_id", "name"])
    codes: dict[tuple[str, str], str | None] = {}
    for c in compounds:
        codes[(c["city"], c["district"])] = c.get("district_code") or codes.get((c["city"], c["district"]))
    recs = [{"city_id": cities.ids[(city,)], "name": d, "code": code} for (city, d), code in codes.items()]
    out["districts"] = districts.run(recs, {"code"})
    streets = _Upsert(session, Street, ["district_id", "name"])
    keys = sorted({(c["city"], c["district"], c["street"]) for c in compounds})
    district_id = {k: districts.ids[(cities.ids[(k[0],)], k[1])] for k in codes}
    out["streets"] = streets.run(({"district_id": district_id[k[:2]], "name": k[2]} for k in keys), set())
    communities = _Upsert(session, Community, ["street_id", "name"])
    full = sorted({(c["city"], c["district"], c["street"], c["community"]) for c in compounds})
    street_id = {k: streets.ids[(district_id[k[:2]], k[2])] for k in keys}
    out["communities"] = communities.run(({"street_id": street_id[k[:3]], "name": k[3]} for k in full), set())
    return {k: communities.ids[(street_id[k[:3]], k[3])] for k in full}


def _sync_units(
    session: Session, counts: dict[tuple[int, str], int], building_ids: dict[tuple[Any, ...], int]
) -> None:
    """Units 1..n of each building: add the missing, remove those beyond n."""
    have: dict[int, set[str]] = {}
    for building_id, unit_no in session.execute(select(Unit.building_id, Unit.unit_no)):
        have.setdefault(building_id, set()).add(unit_no)
    adds, drops = [], []
    for key, n in counts.items():
        bid = building_ids[key]
        want = {str(i) for i in range(1, n + 1)}
        current = have.get(bid, set())
        adds += [{"building_id": bid, "unit_no": u} for u in sorted(want - current)]
        drops += [(bid, u) for u in current - want]
    if adds:
        session.execute(insert(Unit), adds)
    for bid, unit_no in drops:
        session.execute(delete(Unit).where(Unit.building_id == bid, Unit.unit_no == unit_no))


def _write_assets(
    session: Session, records: Records, raw: RawSheet, org_id: dict[str, int], compound_id: dict[str, int],
    building_ids: dict[tuple[Any, ...], int], step: Callable[[str], Callable[[int], None] | None],
) -> dict[str, SheetChanges]:  # fmt: skip
    """Upsert assets, then bind their device ids (closing the bindings they replace)."""
    assets = _Upsert(session, Asset, ["asset_code"])
    template: dict[str, Any] = {c.name: None for c in Asset.__table__.c if c.name != "id"}
    recs = []
    for _, r in records:
        rec = dict(template)
        rec.update({k: v for k, v in r.items() if k in rec})
        cid = compound_id[r["compound_code"]]
        rec["compound_id"] = cid
        rec["building_id"] = building_ids[(cid, r["building_no"])] if r.get("building_no") else None
        rec["owner_org_id"] = org_id[r["owner_org"]] if r.get("owner_org") else None
        rec["maintainer_org_id"] = org_id[r["maintainer_org"]] if r.get("maintainer_org") else None
        recs.append(rec)
    columns = _columns(raw, ASSET_COLUMNS) - {"device_id"}
    out = {"assets": assets.run(recs, columns, step("assets"))}
    if "device_id" in raw.present:
        wanted = {assets.ids[(r["asset_code"],)]: r["device_id"] for _, r in records if r.get("device_id")}
        out["device_bindings"] = bind_devices(session, wanted)
    return out


def bind_devices(session: Session, wanted: dict[int, str], now: dt.datetime | None = None) -> SheetChanges:
    """Make each ``asset id -> device id`` the active binding, closing any binding it replaces."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    active = session.execute(
        select(DeviceBinding.id, DeviceBinding.asset_id, DeviceBinding.device_id).where(
            DeviceBinding.valid_to.is_(None)
        )
    )
    by_asset: dict[int, tuple[int, str]] = {}
    by_device: dict[str, int] = {}
    for bid, asset_id, device in active:
        by_asset[asset_id] = (bid, device)
        by_device[device] = bid
    close: set[int] = set()
    new = []
    for asset_id, device in wanted.items():
        current = by_asset.get(asset_id)
        if current is not None and current[1] == device:
            continue
        if current is not None:
            close.add(current[0])
        if device in by_device:
            close.add(by_device[device])
        new.append({"device_id": device, "asset_id": asset_id, "valid_from": now, "valid_to": None})
    if close:
        session.execute(update(DeviceBinding), [{"id": i, "valid_to": now} for i in sorted(close)])
    if new:
        session.execute(insert(DeviceBinding), new)
    return SheetChanges(
        rows=len(wanted), created=len(new), updated=len(close), unchanged=len(wanted) - len(new)
    )


def parse_members(value: str | None) -> list[tuple[str, str | None]]:
    """``"姓名:电话; 姓名:电话"`` as (name, phone) pairs."""
    out: list[tuple[str, str | None]] = []
    for part in (value or "").replace("；", ";").split(";"):
        if part.strip():
            name, _, phone = part.replace("：", ":").partition(":")
            out.append((name.strip(), phone.strip() or None))
    return out


def format_members(members: Iterable[tuple[str, str | None]]) -> str:
    """The ledger form of a crew's members."""
    return "; ".join(f"{name}:{phone}" if phone else name for name, phone in members)


def _sync_members(session: Session, wanted: dict[int, str | None]) -> None:
    """Replace the members of crews whose member list changed."""
    have: dict[int, list[tuple[str, str | None]]] = {}
    rows = session.execute(
        select(CrewMember.crew_id, CrewMember.name, CrewMember.phone).order_by(CrewMember.position)
    )
    for crew_id, name, phone in rows:
        have.setdefault(crew_id, []).append((name, phone))
    changed = {cid: parse_members(v) for cid, v in wanted.items() if parse_members(v) != have.get(cid, [])}
    if changed:
        session.execute(delete(CrewMember).where(CrewMember.crew_id.in_(list(changed))))
        rows_new = [
            {"crew_id": cid, "position": i, "name": name, "phone": phone}
            for cid, members in changed.items()
            for i, (name, phone) in enumerate(members)
        ]
        if rows_new:
            session.execute(insert(CrewMember), rows_new)


def _sync_kinds(session: Session, wanted: dict[int, str]) -> None:
    """Replace the asset kinds of contracts whose kinds changed."""
    have: dict[int, set[str]] = {}
    for cid, kind in session.execute(select(ContractKind.contract_id, ContractKind.kind)):
        have.setdefault(cid, set()).add(kind)
    changed = {
        cid: set(v.split(",")) for cid, v in wanted.items() if set(v.split(",")) != have.get(cid, set())
    }
    if changed:
        session.execute(delete(ContractKind).where(ContractKind.contract_id.in_(list(changed))))
        session.execute(
            insert(ContractKind), [{"contract_id": c, "kind": k} for c, ks in changed.items() for k in ks]
        )
