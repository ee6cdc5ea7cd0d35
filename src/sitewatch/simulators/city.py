"""A seeded synthetic city: districts, streets, communities and pre-2000 compounds with their devices.

The result is the ledger (台账) a property manager keeps, in the format of :mod:`sitewatch.assets.ledger`,
so that ``sitewatch assets import`` reads it like any real ledger. Proportions follow a renovation
programme of 267 compounds with 1,865 buildings and 56,351 households (about 7 buildings and 211
households per compound).

The ledger describes the city on a reference date (default: today): its maintenance contracts are
in force then and for at least ``CONTRACT_AHEAD_DAYS`` after, so that alerts raised while the city
is simulated are routed to a crew. Everything else is fixed by the seed; the same seed and
reference date give the same ledger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..contract import KINDS, DeviceKind, device_id

Records = dict[str, list[dict[str, Any]]]
CONTRACT_TERM_YEARS = 4  # maintenance contracts run in 4-year terms from January after the renovation
CONTRACT_AHEAD_DAYS = 2 * 365  # a ledger's contracts cover at least this long after its reference date


@dataclass(frozen=True, slots=True)
class District:
    """An urban district: name, administrative division code and centre."""

    name_zh: str
    code: str
    latitude: float
    longitude: float


CITY = "长春市"
DISTRICTS: tuple[District, ...] = (
    District("南关区", "220102", 43.86, 125.35),
    District("宽城区", "220103", 43.92, 125.33),
    District("朝阳区", "220104", 43.83, 125.29),
    District("二道区", "220105", 43.87, 125.40),
    District("绿园区", "220106", 43.88, 125.25),
)
_STREET_NAMES = (
    "永吉",
    "桃源",
    "鸿城",
    "南岭",
    "曙光",
    "民康",
    "全安",
    "明珠",
    "新春",
    "自强",
    "西安",
    "正阳",
)
_COMPOUND_WORDS = ("幸福", "和平", "建设", "红旗", "光明", "友谊", "胜利", "工农", "东风", "团结", "长青", "向阳",
                   "铁北", "机车", "纺织", "化工", "电力", "粮食", "邮电", "卫生")  # fmt: skip
_COMPOUND_SUFFIX = ("小区", "家属院", "新村", "花园", "里")
_PINYIN = {"幸福": "Xingfu", "和平": "Heping", "建设": "Jianshe", "红旗": "Hongqi", "光明": "Guangming",
           "友谊": "Youyi", "胜利": "Shengli", "工农": "Gongnong", "东风": "Dongfeng", "团结": "Tuanjie",
           "长青": "Changqing", "向阳": "Xiangyang", "铁北": "Tiebei", "机车": "Jiche", "纺织": "Fangzhi",
           "化工": "Huagong", "电力": "Dianli", "粮食": "Liangshi", "邮电": "Youdian", "卫生": "Weisheng"}  # fmt: skip
ELEVATOR_MAKERS = (("日立电梯(中国)有限公司", "HGP-800"), ("通力电梯有限公司", "KONE-3000S"),
                   ("奥的斯电梯(中国)有限公司", "GeN2-MRL"), ("康力电梯股份有限公司", "KL-J800"))  # fmt: skip
CAMERA_MAKERS = (
    ("杭州海康威视数字技术股份有限公司", "DS-2CD3T47"),
    ("浙江大华技术股份有限公司", "IPC-HFW2431"),
)
CHARGER_MAKERS = (("特来电新能源股份有限公司", "TELD-AC7"), ("星星充电", "SC-AC7K"), ("许继电气", "XJ-AC11"))
LIGHT_MAKERS = (("雷士照明", "NVC-LED60"), ("欧普照明", "OPPLE-LED40"))
METER_MAKERS = (("宁波水表股份有限公司", "LXSY-20E"), ("三川智慧科技股份有限公司", "NB-LXS-20"))
PROPERTY_COMPANIES = ("长春市城投物业服务有限公司", "吉林省安居物业管理有限公司", "长春市万家物业服务有限公司",
                      "长春市恒润物业有限公司", "吉林省和睦物业服务有限公司")  # fmt: skip
CONTRACTORS = {
    "elevator": ("长春市安达电梯维保有限公司", "吉林省鼎力电梯工程有限公司"),
    "camera": ("长春市天网安防工程有限公司",),
    "charger": ("长春新能源充电服务有限公司",),
    "streetlight": ("长春市路灯维护工程有限公司",),
}
WATER_COMPANY = "长春水务集团有限公司"
BUREAU = "长春市住房和城乡建设局"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"


def _local(kind: DeviceKind, n: int) -> str:
    width = {DeviceKind.WATER_METER: 5, DeviceKind.GATEWAY: 2}.get(kind, 4)
    return f"{KINDS[kind].code}{n:0{width}d}"


def generate_city(compounds: int = 267, seed: int = 1, reference: dt.date | None = None) -> Records:
    """Ledger records (per sheet) of a synthetic city of ``compounds`` renovated compounds, as its
    ledger stands on ``reference`` (default: today)."""
    if compounds < 1:
        raise ValueError("a city needs at least one compound")
    reference = reference or dt.date.today()
    rng = np.random.default_rng(seed)
    out: Records = {
        k: [] for k in ("organisations", "compounds", "buildings", "assets", "crews", "contracts")
    }
    _organisations(out, rng)
    serial = 0
    for c in range(compounds):
        district = DISTRICTS[int(rng.integers(len(DISTRICTS)))]
        code = f"{district.code}-{c + 1:04d}"
        serial = _compound(out, rng, c, code, district, serial, reference)
    return out


def contract_term(renovation_year: int, reference: dt.date) -> tuple[dt.date, dt.date]:
    """A compound's maintenance contract (first day, last day) as the ledger holds it on ``reference``:
    from January after the renovation, renewed term by term until at least ``CONTRACT_AHEAD_DAYS``
    after ``reference``."""
    first = renovation_year + 1
    end = dt.date(first + CONTRACT_TERM_YEARS - 1, 12, 31)
    while end < reference + dt.timedelta(days=CONTRACT_AHEAD_DAYS):
        end = end.replace(year=end.year + CONTRACT_TERM_YEARS)
    return dt.date(first, 1, 1), end


def _phone(rng: np.random.Generator) -> str:
    return f"13{int(rng.integers(0, 10))}{int(rng.integers(10_000_000, 99_999_999)):08d}"


def _person(rng: np.random.Generator) -> str:
    return SURNAMES[int(rng.integers(len(SURNAMES)))] + ("师傅", "工", "经理")[int(rng.integers(3))]


def _organisations(out: Records, rng: np.random.Generator) -> None:
    orgs = out["organisations"]
    for name in PROPERTY_COMPANIES:
        orgs.append({"name": name, "type": "property_company", "contact": _person(rng), "phone": _phone(rng)})
    for kind, names in CONTRACTORS.items():
        for i, name in enumerate(names):
            orgs.append({"name": name, "type": "contractor", "contact": _person(rng), "phone": _phone(rng)})
            code = f"CR-{KINDS[DeviceKind(kind)].code}{i + 1:02d}"
            members = "; ".join(f"{_person(rng)}:{_phone(rng)}" for _ in range(3))
            out["crews"].append({"crew_code": code, "org": name, "name": f"{name[:6]}抢修{i + 1}班",
                                 "leader": _person(rng), "phone": _phone(rng), "wecom_id": f"wecom-{code.lower()}",
                                 "members": members})  # fmt: skip
    orgs.append({"name": WATER_COMPANY, "type": "utility", "contact": _person(rng), "phone": _phone(rng)})
    orgs.append({"name": BUREAU, "type": "bureau", "contact": _person(rng), "phone": "0431-88888888"})
    for d in DISTRICTS:
        orgs.append({"name": f"{d.name_zh}社区物业服务中心", "type": "community", "phone": _phone(rng)})


def _compound(
    out: Records, rng: np.random.Generator, c: int, code: str, district: District, serial: int, reference: dt.date
) -> int:
    street = f"{_STREET_NAMES[int(rng.integers(len(_STREET_NAMES)))]}街道"
    community = f"{_STREET_NAMES[int(rng.integers(len(_STREET_NAMES)))]}第{int(rng.integers(1, 9))}社区"
    word = _COMPOUND_WORDS[c % len(_COMPOUND_WORDS)]
    suffix = _COMPOUND_SUFFIX[int(rng.integers(len(_COMPOUND_SUFFIX)))]
    name_zh = (
        f"{word}{suffix}{c // len(_COMPOUND_WORDS) + 1}期" if c >= len(_COMPOUND_WORDS) else word + suffix
    )
    year_built = int(rng.integers(1978, 2000))
    renovation_year = int(rng.choice([2021, 2022, 2023, 2024]))
    mode = str(rng.choice(["property_company", "service_centre", "self_governance"], p=[0.5, 0.3, 0.2]))
    manager = {
        "property_company": PROPERTY_COMPANIES[int(rng.integers(len(PROPERTY_COMPANIES)))],
        "service_centre": f"{district.name_zh}社区物业服务中心",
        "self_governance": f"{district.name_zh}社区物业服务中心",
    }[mode]
    n_buildings = int(np.clip(np.round(rng.lognormal(np.log(6.2), 0.5)), 1, 30))
    lat = district.latitude + float(rng.normal(0, 0.02))
    lon = district.longitude + float(rng.normal(0, 0.02))
    installed = dt.date(renovation_year, int(rng.integers(4, 11)), int(rng.integers(1, 28)))
    counters = dict.fromkeys(DeviceKind, 0)
    assets = out["assets"]
    households_total = 0
    area = 0.0

    def asset(kind: DeviceKind, building: str | None, **extra: Any) -> dict[str, Any]:
        nonlocal serial
        counters[kind] += 1
        serial += 1
        local = _local(kind, counters[kind])
        did = device_id(code, local)
        maker = {DeviceKind.ELEVATOR: ELEVATOR_MAKERS, DeviceKind.CAMERA: CAMERA_MAKERS,
                 DeviceKind.CHARGER: CHARGER_MAKERS, DeviceKind.STREETLIGHT: LIGHT_MAKERS,
                 DeviceKind.WATER_METER: METER_MAKERS}.get(kind, (("华为技术有限公司", "AR502H"),))  # fmt: skip
        manufacturer, model = maker[serial % len(maker)]
        contractors = CONTRACTORS.get(kind.value)
        maintainer = WATER_COMPANY if kind is DeviceKind.WATER_METER else (
            contractors[c % len(contractors)] if contractors else manager)  # fmt: skip
        rec: dict[str, Any] = {
            "asset_code": did, "compound_code": code, "building_no": building, "kind": kind.value,
            "device_id": did, "manufacturer": manufacturer, "model": model, "serial_no": f"SN{serial:09d}",
            "install_date": installed, "warranty_end": installed.replace(year=installed.year + 5),
            "owner_org": WATER_COMPANY if kind is DeviceKind.WATER_METER else manager,
            "maintainer_org": maintainer, "funding_source": "中央预算内投资+地方配套",
        }  # fmt: skip
        rec.update(extra)
        assets.append(rec)
        return rec

    asset(DeviceKind.GATEWAY, None, name="小区物联网网关", location="物业用房")
    for b in range(1, n_buildings + 1):
        bno = str(b)
        floors = int(rng.choice([4, 5, 6, 7], p=[0.1, 0.25, 0.5, 0.15]))
        units = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.35, 0.35, 0.15]))
        per_floor = int(rng.choice([2, 3], p=[0.8, 0.2]))
        households = floors * units * per_floor
        households_total += households
        area += households * float(rng.uniform(55, 75))
        out["buildings"].append({"compound_code": code, "building_no": bno, "floors": floors, "units": units,
                                 "households": households, "year_built": year_built})  # fmt: skip
        asset(DeviceKind.WATER_METER, bno, name=f"{bno}号楼总表", location=f"{bno}号楼进户井",
              meter_scope="building", meter_size_mm=50)  # fmt: skip
        for u in range(1, units + 1):
            if floors >= 4 and rng.random() < 0.38:  # residents of this entrance agreed to an elevator
                asset(DeviceKind.ELEVATOR, bno, unit_no=str(u), name=f"{bno}号楼{u}单元加装电梯",
                      location=f"{bno}号楼{u}单元北侧", rated_load_kg=int(rng.choice([630, 800, 1000])),
                      floors_served=floors + 1, registration_code=f"梯11220{int(rng.integers(10**7, 10**8))}")  # fmt: skip
                asset(DeviceKind.CAMERA, bno, unit_no=str(u), name=f"{bno}号楼{u}单元电梯轿厢摄像头",
                      location=f"{bno}号楼{u}单元电梯轿厢", police_linked=False)  # fmt: skip
            for floor in range(1, floors + 1):
                for door in range(1, per_floor + 1):
                    room = f"{floor}{door:02d}"
                    asset(DeviceKind.WATER_METER, bno, unit_no=str(u), household=room,
                          name=f"{bno}-{u}-{room}户表", location=f"{bno}号楼{u}单元{room}室",
                          meter_scope="household", meter_size_mm=20)  # fmt: skip
        asset(DeviceKind.CAMERA, bno, name=f"{bno}号楼楼道口摄像头", location=f"{bno}号楼单元门口",
              police_linked=False)  # fmt: skip
    gates = int(rng.integers(1, 4))
    for g in range(1, gates + 1):
        for side in ("入口", "出口"):
            asset(DeviceKind.CAMERA, None, name=f"{g}号门{side}摄像头", location=f"{g}号门{side}",
                  police_linked=True)  # fmt: skip
    paths = max(2, round(n_buildings * rng.uniform(1.2, 2.2)))
    for p in range(1, paths + 1):
        asset(
            DeviceKind.CAMERA, None, name=f"道路监控{p}", location=f"小区内道路{p}", police_linked=p % 3 == 0
        )
    chargers = max(2, round(households_total * rng.uniform(0.03, 0.07)))
    for i in range(1, chargers + 1):
        power = float(rng.choice([7.0, 7.0, 7.0, 11.0]))
        asset(DeviceKind.CHARGER, None, name=f"{i}号充电桩", location="停车场", charger_power_kw=power,
              connector_type="GB/T AC", ocpp_id=f"CP{code.replace('-', '')}{i:03d}")  # fmt: skip
    lights = max(6, round(n_buildings * rng.uniform(3.5, 5.5)))
    wattage = float(rng.choice([30.0, 40.0, 60.0]))
    for i in range(1, lights + 1):
        asset(DeviceKind.STREETLIGHT, None, name=f"路灯{i}", location=f"小区道路{(i - 1) // 6 + 1}段",
              lamp_type="LED", wattage_w=wattage)  # fmt: skip
    asset(DeviceKind.WATER_METER, None, name="小区总表", location="小区进水口", meter_scope="building",
          meter_size_mm=100)  # fmt: skip
    content = "加装电梯、安防监控、充电桩、路灯、供水管网及一户一表改造"
    pinyin = _PINYIN[word]
    out["compounds"].append({
        "code": code, "name_zh": name_zh, "name_en": f"{pinyin} {'Compound'} {c + 1}", "city": CITY,
        "district": district.name_zh, "district_code": district.code, "street": street, "community": community,
        "address": f"{CITY}{district.name_zh}{street[:-2]}路{int(rng.integers(1, 999))}号",
        "longitude": round(lon, 5), "latitude": round(lat, 5), "year_built": year_built,
        "buildings": n_buildings, "households": households_total, "floor_area_m2": round(area, 1),
        "renovation_year": renovation_year, "renovation_batch": f"{renovation_year}年第{int(rng.integers(1, 3))}批",
        "renovation_content": content, "management_mode": mode, "manager_org": manager,
    })  # fmt: skip
    start, end = contract_term(renovation_year, reference)
    for kind, names in CONTRACTORS.items():
        idx = c % len(names)
        out["contracts"].append({
            "contract_no": f"WB-{code}-{KINDS[DeviceKind(kind)].code}", "org": names[idx], "compound_code": code,
            "kinds": kind, "crew_code": f"CR-{KINDS[DeviceKind(kind)].code}{idx + 1:02d}",
            "start_date": start, "end_date": end,
            "response_minutes": 15, "arrival_minutes": 30 if kind == "elevator" else 120,
        })  # fmt: skip
    return serial


def summary(records: Records) -> dict[str, int]:
    """Counts of a generated city: compounds, buildings, households and assets per kind."""
    out = {
        "compounds": len(records["compounds"]),
        "buildings": len(records["buildings"]),
        "households": sum(int(r["households"]) for r in records["compounds"]),
        "assets": len(records["assets"]),
    }
    for kind in DeviceKind:
        out[kind.value] = sum(1 for a in records["assets"] if a["kind"] == kind.value)
    return out
