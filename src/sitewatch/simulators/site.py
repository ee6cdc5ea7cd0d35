"""Sites: one compound's gateway and devices, as the simulators need them, loaded from a ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import DeviceInfo, DeviceKind, device_belongs_to

# How the site gateway talks to each kind (see DESIGN.md, gateway connectors).
PROTOCOLS: Mapping[DeviceKind, str] = {
    DeviceKind.ELEVATOR: "modbus",
    DeviceKind.WATER_METER: "modbus",
    DeviceKind.CHARGER: "ocpp",
    DeviceKind.CAMERA: "onvif",
    DeviceKind.STREETLIGHT: "mqtt",
}
SIMULATED_KINDS: tuple[DeviceKind, ...] = tuple(PROTOCOLS)
DEFAULT_LATITUDE, DEFAULT_LONGITUDE = 43.88, 125.32  # Changchun, the generated city


class LedgerError(ValueError):
    """The ledger cannot be read or holds no usable compound."""


@dataclass(frozen=True, slots=True)
class Device:
    """One simulated device: contract id, kind, protocol and the attributes its model uses."""

    device: str  # contract device id, "<compound>-<local>"
    local: str
    kind: DeviceKind
    protocol: str
    building_no: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def info(self) -> DeviceInfo:
        """The device as declared in the gateway's birth message."""
        return DeviceInfo(self.device, self.kind, self.protocol)


@dataclass(frozen=True, slots=True)
class Site:
    """One compound: its code, gateway id, location and simulated devices."""

    compound: str
    gateway: str
    name: str = ""
    latitude: float = DEFAULT_LATITUDE
    longitude: float = DEFAULT_LONGITUDE
    households: int = 0
    devices: tuple[Device, ...] = ()

    def of_kind(self, kind: DeviceKind) -> list[Device]:
        """Devices of one kind, in ledger order."""
        return [d for d in self.devices if d.kind is kind]


_ATTR_KEYS = ("rated_load_kg", "floors_served", "charger_power_kw", "wattage_w", "meter_scope",
              "meter_size_mm", "household", "unit_no", "install_date", "police_linked", "location")  # fmt: skip


def sites_from_records(records: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Site]:
    """Sites from typed ledger records (as :func:`sitewatch.simulators.city.generate_city` returns)."""
    floors = {(b["compound_code"], b["building_no"]): b.get("floors") for b in records.get("buildings", [])}
    homes = {
        (b["compound_code"], b["building_no"]): b.get("households") for b in records.get("buildings", [])
    }
    compound_homes = {c["code"]: c.get("households") for c in records.get("compounds", [])}
    per_compound: dict[str, list[Device]] = {}
    gateways: dict[str, str] = {}
    for a in records.get("assets", []):
        code, did = a["compound_code"], a.get("device_id")
        if not did or not device_belongs_to(did, code):
            continue
        kind = DeviceKind(a["kind"])
        if kind is DeviceKind.GATEWAY:
            gateways.setdefault(code, did)
            continue
        if kind not in PROTOCOLS:
            continue
        attrs = {k: a[k] for k in _ATTR_KEYS if a.get(k) is not None}
        building = a.get("building_no")
        if building is not None and floors.get((code, building)) is not None:
            attrs["building_floors"] = floors[(code, building)]
        if attrs.get("meter_scope") == "building":
            served = homes.get((code, building)) if building is not None else compound_homes.get(code)
            attrs["served_households"] = served or 30
        local = did[len(code) + 1 :]
        per_compound.setdefault(code, []).append(Device(did, local, kind, PROTOCOLS[kind], building, attrs))
    sites = []
    for c in records.get("compounds", []):
        code = c["code"]
        sites.append(
            Site(
                compound=code,
                gateway=gateways.get(code, f"{code}-GW01"),
                name=str(c.get("name_zh") or code),
                latitude=float(c.get("latitude") or DEFAULT_LATITUDE),
                longitude=float(c.get("longitude") or DEFAULT_LONGITUDE),
                households=int(c.get("households") or 0),
                devices=tuple(per_compound.get(code, ())),
            )
        )
    return sites


def load_sites(ledger_path: Path | str, compounds: Iterable[str] | None = None) -> list[Site]:
    """Sites of the ledger at ``ledger_path`` (.xlsx, .csv or a CSV directory), optionally only some compounds.

    Raises LedgerError (with the reader's reasons) when the file cannot be used.
    """
    from ..assets.reader import read_ledger
    from ..assets.report import Issues
    from ..assets.rows import parse_sheet

    issues = Issues()
    raw = read_ledger(Path(ledger_path), issues)
    if issues.errors or "compounds" not in raw or "assets" not in raw:
        reasons = "; ".join(i.message() for i in issues.kept[:5]) or "no compounds or assets sheet"
        raise LedgerError(f"cannot use ledger {ledger_path}: {reasons}")
    records = {name: [rec for _, rec in parse_sheet(sheet, issues)] for name, sheet in raw.items()}
    sites = sites_from_records(records)
    if compounds is not None:
        wanted = list(dict.fromkeys(compounds))
        known = {s.compound: s for s in sites}
        missing = [c for c in wanted if c not in known]
        if missing:
            raise LedgerError(f"compound(s) not in the ledger: {', '.join(missing[:10])}")
        sites = [known[c] for c in wanted]
    if not sites:
        raise LedgerError(f"ledger {ledger_path} holds no compound")
    return sites
