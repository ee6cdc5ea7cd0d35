"""A tiny, predictable ledger for the registry's tests: compounds C0001.., organisations 物业公司1..,
crews CR01.., so that tests can name what they expect. The product's one city generator, for
everything else, is :func:`sitewatch.simulators.city.generate_city`."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sitewatch.contract import DeviceKind

KIND_SHARE = {  # of a compound's assets; water meters dominate, as household meters do
    DeviceKind.WATER_METER: 0.62,
    DeviceKind.CAMERA: 0.12,
    DeviceKind.STREETLIGHT: 0.10,
    DeviceKind.CHARGER: 0.08,
    DeviceKind.ELEVATOR: 0.05,
    DeviceKind.GATEWAY: 0.03,
}
_LOCAL = {
    DeviceKind.WATER_METER: "WM", DeviceKind.CAMERA: "CA", DeviceKind.STREETLIGHT: "SL",
    DeviceKind.CHARGER: "EV", DeviceKind.ELEVATOR: "EL", DeviceKind.GATEWAY: "GW",
}  # fmt: skip


def synthetic_ledger(
    compounds: int = 3, assets_per_compound: int = 40, seed: int = 7, today: dt.date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Records per ledger sheet for ``compounds`` compounds of ``assets_per_compound`` assets each;
    the maintenance contracts run from three years before ``today`` (default: the real today) to
    three years after, so they are in force whenever the tests run, on the real clock or on a test
    clock near it."""
    rng = random.Random(seed)
    today = today or dt.date.today()
    contract_start, contract_end = dt.date(today.year - 3, 1, 1), dt.date(today.year + 3, 12, 31)
    orgs = [
        {
            "name": f"物业公司{i}",
            "type": "property_company",
            "contact": f"经理{i}",
            "phone": f"0431-8800{i:04d}",
        }
        for i in range(1, 6)
    ]
    orgs += [
        {"name": f"维保单位{i}", "type": "contractor", "contact": f"工程师{i}", "phone": f"1390000{i:04d}"}
        for i in range(1, 5)
    ]
    orgs += [{"name": "市自来水公司", "type": "utility"}, {"name": "市住建局", "type": "bureau"}]
    out: dict[str, list[dict[str, Any]]] = {
        "organisations": orgs,
        "compounds": [],
        "buildings": [],
        "assets": [],
    }
    crews, contracts = [], []
    for i in range(1, 5):
        crews.append({"crew_code": f"CR{i:02d}", "org": f"维保单位{i}", "name": f"维保{i}班", "leader": f"班长{i}",
                      "phone": f"1380000{i:04d}", "wecom_id": f"wecom{i}", "members": f"张{i}:1370000{i:04d}; 李{i}:1360000{i:04d}"})  # fmt: skip
    districts = ["南关区", "宽城区", "朝阳区", "二道区", "绿园区"]
    for c in range(1, compounds + 1):
        code = f"C{c:04d}"
        district = districts[c % len(districts)]
        n_buildings = rng.randint(4, 12)
        out["compounds"].append({
            "code": code, "name_zh": f"幸福{c}小区", "name_en": f"Xingfu {c}", "city": "长春市", "district": district,
            "district_code": f"2201{districts.index(district) + 2:02d}", "street": f"{district}第{c % 7 + 1}街道",
            "community": f"第{c % 19 + 1}社区", "address": f"{district}幸福路{c}号", "longitude": 125.3 + c * 1e-4,
            "latitude": 43.8 + c * 1e-4, "year_built": rng.randint(1980, 1999), "buildings": n_buildings,
            "households": n_buildings * 36, "floor_area_m2": n_buildings * 2500.0, "renovation_year": 2021 + c % 3,
            "renovation_batch": f"第{c % 3 + 1}批", "renovation_content": "加装电梯、充电桩、路灯、安防、供水改造",
            "management_mode": ["property_company", "service_centre", "self_governance"][c % 3],
            "manager_org": f"物业公司{c % 5 + 1}",
        })  # fmt: skip
        for b in range(1, n_buildings + 1):
            out["buildings"].append({"compound_code": code, "building_no": str(b), "floors": 6, "units": 3,
                                     "households": 36, "year_built": 1990})  # fmt: skip
        maintainer = f"维保单位{c % 4 + 1}"
        contracts.append({"contract_no": f"HT-{code}", "org": maintainer, "compound_code": code,
                          "kinds": "elevator,camera,charger,streetlight", "crew_code": f"CR{c % 4 + 1:02d}",
                          "start_date": contract_start, "end_date": contract_end,
                          "response_minutes": 15, "arrival_minutes": 30})  # fmt: skip
        counters = dict.fromkeys(KIND_SHARE, 0)
        kinds = list(KIND_SHARE)
        weights = list(KIND_SHARE.values())
        for a in range(assets_per_compound):
            kind = kinds[a] if a < len(kinds) else rng.choices(kinds, weights)[0]
            counters[kind] += 1
            local = f"{_LOCAL[kind]}{counters[kind]:04d}"
            building = rng.randint(1, n_buildings)
            rec: dict[str, Any] = {
                "asset_code": f"{code}-{local}", "compound_code": code, "kind": kind.value,
                "device_id": f"{code}-{local}", "name": f"{building}号楼{kind.value}{counters[kind]}",
                "manufacturer": "长春设备厂", "model": f"M-{kind.value[:3].upper()}",
                "serial_no": f"SN{c:04d}{a:06d}", "install_date": dt.date(2022, 5, 1) + dt.timedelta(days=a % 300),
                "warranty_end": dt.date(2027, 5, 1), "owner_org": f"物业公司{c % 5 + 1}",
                "maintainer_org": "市自来水公司" if kind is DeviceKind.WATER_METER else maintainer,
                "funding_source": "中央补助资金",
            }  # fmt: skip
            if kind not in (DeviceKind.STREETLIGHT, DeviceKind.GATEWAY):
                rec["building_no"] = str(building)
            if kind is DeviceKind.ELEVATOR:
                rec.update(unit_no=str(rng.randint(1, 3)), rated_load_kg=800, floors_served=7,
                           registration_code=f"梯11{c:04d}{a:05d}")  # fmt: skip
            elif kind is DeviceKind.CHARGER:
                rec.update(
                    charger_power_kw=7.0, connector_type="GB/T AC", ocpp_id=f"CP-{code}-{counters[kind]}"
                )
            elif kind is DeviceKind.CAMERA:
                rec.update(police_linked=a % 2 == 0, location="小区大门")
            elif kind is DeviceKind.STREETLIGHT:
                rec.update(lamp_type="LED", wattage_w=60.0)
            elif kind is DeviceKind.WATER_METER:
                rec.update(meter_scope="household", meter_size_mm=20, unit_no=str(rng.randint(1, 3)),
                           household=f"{rng.randint(1, 6)}0{rng.randint(1, 2)}")  # fmt: skip
            out["assets"].append(rec)
    out["crews"] = crews
    out["contracts"] = contracts
    return out
