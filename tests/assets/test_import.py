"""Ledger import: a valid ledger goes in whole, again changes nothing, export reads back the same."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sitewatch.assets.exporter import export_ledger
from sitewatch.assets.importer import ImportOptions, count_rows, import_ledger
from sitewatch.assets.models import Asset, Compound, ContractKind, CrewMember, DeviceBinding, District, Unit
from sitewatch.assets.workbook import HeaderStyle

from .ledger_builder import csv_dir, ledger, xlsx


def test_import_then_reimport_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    data = ledger(compounds=3, assets_per_compound=30)
    path = xlsx(data, tmp_path / "ledger.xlsx")
    first = import_ledger(engine, path)
    assert first.ok and first.committed, first.as_dict()
    assert first.changes["assets"].created == 90
    assert first.changes["device_bindings"].created == 90
    counts = count_rows(engine)
    assert counts["compounds"] == 3 and counts["assets"] == 90 and counts["contracts"] == 3
    again = import_ledger(engine, path)
    assert again.ok
    assert all(c.created == 0 and c.updated == 0 for c in again.changes.values()), again.as_dict()
    assert count_rows(engine) == counts


def test_values_hierarchy_and_relations_are_stored(sqlite_engine: Engine, tmp_path: Path) -> None:
    data = ledger(compounds=1, assets_per_compound=10)
    assert import_ledger(sqlite_engine, xlsx(data, tmp_path / "l.xlsx", HeaderStyle.EN)).ok
    with Session(sqlite_engine) as s:
        compound = s.scalars(select(Compound)).one()
        assert compound.name_zh == "幸福1小区" and compound.management_mode == "service_centre"
        assert compound.manager_org is not None and compound.manager_org.name == "物业公司2"
        assert compound.community.street.district.city.name == "长春市"
        assert s.scalars(select(District.code)).one() == "220103"
        elevator = s.scalars(select(Asset).where(Asset.asset_code == "C0001-EL0001")).one()
        assert elevator.rated_load_kg == 800 and elevator.install_date == dt.date(2022, 5, 5)
        assert elevator.building is not None
        camera = s.scalars(select(Asset).where(Asset.kind == "camera")).first()
        assert camera is not None and camera.police_linked is not None
        assert (
            s.scalar(select(DeviceBinding.device_id).where(DeviceBinding.asset_id == elevator.id))
            == "C0001-EL0001"
        )
        assert len(s.scalars(select(Unit)).all()) == 3 * compound.buildings_count
        assert [
            m.name for m in s.scalars(select(CrewMember).order_by(CrewMember.crew_id, CrewMember.position))
        ][:2] == ["张1", "李1"]
        assert set(s.scalars(select(ContractKind.kind))) == {"elevator", "camera", "charger", "streetlight"}


def test_changes_are_reported_and_devices_replaced_with_history(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    data = ledger(compounds=1, assets_per_compound=8)
    assert import_ledger(sqlite_engine, xlsx(data, tmp_path / "a.xlsx")).ok
    data["assets"][0]["manufacturer"] = "新厂家"
    data["assets"][1]["device_id"] = "C0001-REPLACED1"  # the device of asset 1 was swapped
    data["compounds"][0]["households"] = 999
    report = import_ledger(sqlite_engine, xlsx(data, tmp_path / "b.xlsx"))
    assert report.ok, report.as_dict()
    assert report.changes["assets"].updated == 1 and report.changes["assets"].unchanged == 7
    assert report.changes["compounds"].updated == 1
    assert report.changes["device_bindings"].created == 1 and report.changes["device_bindings"].updated == 1
    with Session(sqlite_engine) as s:
        code = data["assets"][1]["asset_code"]
        history = s.execute(
            select(DeviceBinding.device_id, DeviceBinding.valid_to)
            .join(Asset).where(Asset.asset_code == code).order_by(DeviceBinding.id)
        ).all()  # fmt: skip
        assert [h[0] for h in history] == [data["assets"][1]["asset_code"], "C0001-REPLACED1"]
        assert history[0][1] is not None and history[1][1] is None


def test_dry_run_reports_but_writes_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    before = count_rows(sqlite_engine)
    report = import_ledger(sqlite_engine, xlsx(ledger(), tmp_path / "l.xlsx"), ImportOptions(dry_run=True))
    assert report.ok and not report.committed and report.changes["assets"].created == 24
    assert count_rows(sqlite_engine) == before


def test_csv_directory_and_single_csv(sqlite_engine: Engine, tmp_path: Path) -> None:
    data = ledger()
    assert import_ledger(sqlite_engine, csv_dir(data, tmp_path / "csv")).ok
    single = tmp_path / "single"
    csv_dir({"organisations": data["organisations"]}, single, HeaderStyle.ZH)
    renamed = tmp_path / "台账导出.csv"  # not named after a sheet: recognised by its headers
    (single / "organisations.csv").rename(renamed)
    report = import_ledger(sqlite_engine, renamed)
    assert report.ok and report.changes["organisations"].unchanged == len(data["organisations"])


def test_gbk_csv_from_excel(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "单位.csv"
    path.write_bytes("单位名称,单位类型,联系人\n长春物业,物业公司,王经理\n".encode("gbk"))
    report = import_ledger(sqlite_engine, path)
    assert report.ok, report.as_dict()
    assert report.changes["organisations"].created == 1


def test_export_round_trip(engine: Engine, tmp_path: Path) -> None:
    assert import_ledger(engine, xlsx(ledger(), tmp_path / "in.xlsx")).ok
    for target in (tmp_path / "out.xlsx", tmp_path / "out-csv"):
        counts = export_ledger(engine, target)
        assert counts["assets"] == 24
        report = import_ledger(engine, target)
        assert report.ok, report.as_dict()
        assert all(c.created == 0 and c.updated == 0 for c in report.changes.values()), report.as_dict()
