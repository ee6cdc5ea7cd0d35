"""The generated city: plausible proportions, reproducible, and a ledger the registry imports cleanly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sitewatch.assets.db import create_engine_for, upgrade
from sitewatch.assets.importer import count_rows, import_ledger
from sitewatch.assets.models import Asset, DeviceBinding
from sitewatch.assets.workbook import write_csv_dir, write_xlsx
from sitewatch.contract import DeviceKind, device_belongs_to
from sitewatch.simulators.city import generate_city, summary
from sitewatch.simulators.site import LedgerError, load_sites


def test_city_of_267_compounds_has_the_programmes_proportions() -> None:
    records = generate_city(267, seed=1)
    s = summary(records)
    assert s["compounds"] == 267
    assert 1_400 <= s["buildings"] <= 2_400  # the programme: 1,865 buildings
    assert 40_000 <= s["households"] <= 75_000  # the programme: 56,351 households
    assert s["gateway"] == 267  # one gateway per compound
    household_meters = sum(1 for a in records["assets"] if a.get("meter_scope") == "household")
    building_meters = sum(1 for a in records["assets"] if a.get("meter_scope") == "building")
    assert household_meters == s["households"]  # one water meter per household
    assert building_meters == s["buildings"] + 267  # one per building plus one per compound
    units = sum(b["units"] for b in records["buildings"])
    assert 0.2 * units <= s["elevator"] <= units  # at most one elevator per entrance
    assert s["assets"] - s["gateway"] >= 80_000  # a city deployment is ~100k devices
    for kind in ("camera", "charger", "streetlight"):
        assert s[kind] >= 2 * 267
    assert all(c["year_built"] < 2000 for c in records["compounds"])


def test_same_seed_same_city_other_seed_other_city() -> None:
    day = dt.date(2026, 12, 6)
    assert generate_city(4, seed=9, reference=day) == generate_city(4, seed=9, reference=day)
    assert generate_city(4, seed=9, reference=day)["assets"] != generate_city(4, seed=10, reference=day)["assets"]


def test_device_ids_follow_the_contract(city: dict[str, list[dict[str, Any]]]) -> None:
    ids = [a["device_id"] for a in city["assets"]]
    assert len(ids) == len(set(ids))
    assert all(device_belongs_to(a["device_id"], a["compound_code"]) for a in city["assets"])
    gateways = [a["device_id"] for a in city["assets"] if a["kind"] == "gateway"]
    assert gateways == [f"{c['code']}-GW01" for c in city["compounds"]]


def test_generated_ledger_imports_cleanly_into_the_registry(
    city: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    path = tmp_path / "city.xlsx"
    write_xlsx(city, path)
    engine: Engine = create_engine_for(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine)
    report = import_ledger(engine, path)
    assert report.ok and report.committed, report.as_dict()
    counts = count_rows(engine)
    assert counts["compounds"] == len(city["compounds"])
    assert counts["buildings"] == len(city["buildings"])
    assert counts["assets"] == len(city["assets"])
    assert counts["contracts"] == len(city["contracts"])
    assert counts["crews"] == len(city["crews"])
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(DeviceBinding)) == len(city["assets"])
        meters = s.scalar(
            select(func.count()).where(Asset.kind == "water_meter", Asset.meter_scope == "household")
        )
        assert meters == sum(c["households"] for c in city["compounds"])
    engine.dispose()
    sites = load_sites(path)
    assert [s.compound for s in sites] == [c["code"] for c in city["compounds"]]
    simulated = sum(1 for a in city["assets"] if a["kind"] != "gateway")
    assert sum(len(s.devices) for s in sites) == simulated
    assert {d.kind for s in sites for d in s.devices} == {
        DeviceKind.ELEVATOR,
        DeviceKind.CAMERA,
        DeviceKind.CHARGER,
        DeviceKind.STREETLIGHT,
        DeviceKind.WATER_METER,
    }
    assert sites[0].gateway == f"{sites[0].compound}-GW01"
    one = load_sites(path, [sites[1].compound])
    assert len(one) == 1 and one[0] == sites[1]


def test_unusable_ledgers_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"nope\.xlsx"):
        load_sites(tmp_path / "nope.xlsx")
    write_xlsx(generate_city(1, seed=2), tmp_path / "one.xlsx")
    with pytest.raises(LedgerError, match="999999-0001"):
        load_sites(tmp_path / "one.xlsx", ["999999-0001"])


@pytest.mark.slow
def test_whole_city_ledger_imports_cleanly(tmp_path: Path) -> None:
    records = generate_city(267, seed=1)
    write_csv_dir(records, tmp_path / "ledger")  # CSV: the same reader and importer, a faster writer
    engine: Engine = create_engine_for(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine)
    report = import_ledger(engine, tmp_path / "ledger")
    assert report.ok and report.committed, report.as_dict()
    counts = count_rows(engine)
    s = summary(records)
    assert (counts["compounds"], counts["buildings"], counts["assets"]) == (267, s["buildings"], s["assets"])
    assert counts["device_bindings"] == s["assets"]
    engine.dispose()
    sites = load_sites(tmp_path / "ledger")
    assert sum(len(site.devices) for site in sites) == s["assets"] - s["gateway"]


@pytest.mark.parametrize("reference", [dt.date(2020, 3, 1), dt.date(2026, 12, 6), dt.date(2026, 12, 31),
                                       dt.date(2031, 7, 15), dt.date(2045, 1, 1)])  # fmt: skip
def test_contracts_are_in_force_on_the_reference_date_and_two_years_after(reference: dt.date) -> None:
    city = generate_city(3, seed=5, reference=reference)
    renovated = {c["code"]: c["renovation_year"] for c in city["compounds"]}
    for contract in city["contracts"]:
        start, end = contract["start_date"], contract["end_date"]
        assert start == dt.date(renovated[contract["compound_code"]] + 1, 1, 1)  # January after the works
        assert end >= reference + dt.timedelta(days=2 * 365) and end.month == 12 and end.day == 31
        assert (end.year - start.year + 1) % 4 == 0  # whole 4-year terms
        if start <= reference:
            assert end - reference < dt.timedelta(days=(2 + 4) * 366)  # renewed no further than needed


def test_same_seed_and_reference_same_city_and_only_contract_ends_follow_the_reference() -> None:
    early, late = dt.date(2025, 6, 1), dt.date(2033, 6, 1)
    assert generate_city(4, seed=9, reference=early) == generate_city(4, seed=9, reference=early)
    a, b = generate_city(4, seed=9, reference=early), generate_city(4, seed=9, reference=late)
    assert {k: v for k, v in a.items() if k != "contracts"} == {k: v for k, v in b.items() if k != "contracts"}
    strip = [{k: v for k, v in c.items() if k != "end_date"} for c in a["contracts"]]
    assert strip == [{k: v for k, v in c.items() if k != "end_date"} for c in b["contracts"]]
    assert all(y["end_date"] > x["end_date"] for x, y in zip(a["contracts"], b["contracts"], strict=True))
