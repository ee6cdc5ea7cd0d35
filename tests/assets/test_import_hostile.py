"""Hostile ledgers are refused with a precise per-row report, and the database stays exactly as it was."""

from __future__ import annotations

import hashlib
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from sitewatch.assets.importer import ImportOptions, import_ledger
from sitewatch.assets.models import Base, Compound, DeviceBinding
from sitewatch.assets.reader import ReadLimits
from sitewatch.assets.report import ImportReport
from sitewatch.assets.workbook import HeaderStyle

from .ledger_builder import Ledger, csv_dir, ledger, raw_xlsx, rows_of, xlsx


def snapshot(engine: Engine) -> str:
    """A checksum of every row of every registry table."""
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for name, table in sorted(Base.metadata.tables.items()):
            rows = sorted(repr(tuple(r)) for r in conn.execute(select(table)))
            digest.update(f"{name}:{len(rows)}:{rows}".encode())
    return digest.hexdigest()


@pytest.fixture
def loaded(engine: Engine, tmp_path: Path) -> Engine:
    """A registry holding a valid ledger already."""
    assert import_ledger(engine, xlsx(ledger(), tmp_path / "base.xlsx")).ok
    return engine


def _refused(engine: Engine, path: Path, options: ImportOptions | None = None) -> ImportReport:
    before = snapshot(engine)
    report = import_ledger(engine, path, options or ImportOptions())
    assert not report.ok and not report.committed
    assert snapshot(engine) == before, "a refused import changed the database"
    return report


def _has(
    report: ImportReport,
    code: str,
    sheet: str | None = None,
    row: int | None = None,
    column: str | None = None,
) -> None:
    found = [(i.code, i.sheet, i.row, i.column) for i in report.issues.kept]
    assert any(
        i.code == code and (sheet is None or i.sheet == sheet) and (row is None or i.row == row)
        and (column is None or i.column == column)
        for i in report.issues.kept
    ), found  # fmt: skip


def _mutated(change: Callable[[Ledger], Any]) -> Ledger:
    data = ledger()
    change(data)
    return data


CELL_CASES = [
    (
        "missing compound code",
        lambda d: d["compounds"][1].update(code=None),
        "required",
        "compounds",
        3,
        "code",
    ),
    (
        "missing asset code",
        lambda d: d["assets"][4].update(asset_code=""),
        "required",
        "assets",
        6,
        "asset_code",
    ),
    (
        "households not a number",
        lambda d: d["compounds"][0].update(households="abc"),
        "not_int",
        "compounds",
        2,
        "households",
    ),
    (
        "bad date",
        lambda d: d["assets"][2].update(install_date="2023-02-30"),
        "not_date",
        "assets",
        4,
        "install_date",
    ),
    ("unknown kind", lambda d: d["assets"][3].update(kind="toaster"), "bad_choice", "assets", 5, "kind"),
    (
        "latitude out of range",
        lambda d: d["compounds"][0].update(latitude=123.0),
        "out_of_range",
        "compounds",
        2,
        "latitude",
    ),
    (
        "unknown compound in buildings",
        lambda d: d["buildings"][0].update(compound_code="NOPE"),
        "unknown_ref",
        "buildings",
        2,
        "compound_code",
    ),
    (
        "unknown compound in assets",
        lambda d: d["assets"][1].update(compound_code="NOPE"),
        "unknown_ref",
        "assets",
        3,
        "compound_code",
    ),
    (
        "unknown building",
        lambda d: d["assets"][0].update(building_no="99"),
        "unknown_ref",
        "assets",
        2,
        "building_no",
    ),
    (
        "unknown maintainer",
        lambda d: d["assets"][0].update(maintainer_org="无名公司"),
        "unknown_ref",
        "assets",
        2,
        "maintainer_org",
    ),
    (
        "duplicate serial",
        lambda d: d["assets"][5].update(serial_no=d["assets"][0]["serial_no"]),
        "duplicate_serial",
        "assets",
        7,
        "serial_no",
    ),
    (
        "duplicate asset code",
        lambda d: d["assets"][5].update(asset_code=d["assets"][0]["asset_code"]),
        "duplicate_key",
        "assets",
        7,
        "asset_code",
    ),
    (
        "device of another compound",
        lambda d: d["assets"][0].update(device_id="C0002-EL0001"),
        "bad_device_id",
        "assets",
        2,
        "device_id",
    ),
    (
        "device id twice",
        lambda d: d["assets"][1].update(device_id=d["assets"][0]["device_id"]),
        "duplicate_device",
        "assets",
        3,
        "device_id",
    ),
    (
        "unit beyond the building",
        lambda d: d["assets"][0].update(unit_no="7"),
        "unit_out_of_range",
        "assets",
        2,
        "unit_no",
    ),
    (
        "bad compound code",
        lambda d: d["compounds"][0].update(code="C/1#"),
        "bad_code",
        "compounds",
        2,
        "code",
    ),
    (
        "contract ends before it starts",
        lambda d: d["contracts"][0].update(end_date="2020-01-01"),
        "date_order",
        "contracts",
        2,
        "end_date",
    ),
    (
        "unknown crew",
        lambda d: d["contracts"][0].update(crew_code="CR99"),
        "unknown_ref",
        "contracts",
        2,
        "crew_code",
    ),
]


@pytest.mark.parametrize(
    ("change", "code", "sheet", "row", "column"), [c[1:] for c in CELL_CASES], ids=[c[0] for c in CELL_CASES]
)
def test_bad_cell_refused(loaded: Engine, tmp_path: Path, change: Callable[[Ledger], Any], code: str,
                          sheet: str, row: int, column: str) -> None:  # fmt: skip
    data = _mutated(change)
    data["compounds"][0]["households"] = data["compounds"][0]["households"]  # the rest stays valid
    report = _refused(loaded, xlsx(data, tmp_path / "bad.xlsx"))
    _has(report, code, sheet, row, column)
    issue = next(i for i in report.issues.kept if i.code == code)
    assert issue.message("zh-CN") != issue.message("en")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in issue.message("zh-CN") + issue.location("zh-CN"))


def test_serial_taken_by_an_asset_already_in_the_database(loaded: Engine, tmp_path: Path) -> None:
    data = ledger(compounds=3)
    data["assets"][-1]["serial_no"] = ledger()["assets"][0]["serial_no"]
    data["assets"] = data["assets"][-1:]
    data["assets"][0]["asset_code"] = "NEW-1"
    report = _refused(loaded, xlsx(data, tmp_path / "bad.xlsx"))
    _has(report, "duplicate_serial", "assets", 2, "serial_no")


def test_formula_without_cached_value_is_reported(loaded: Engine, tmp_path: Path) -> None:
    rows = rows_of(ledger(), "compounds")
    col = rows[0].index("户数")
    rows[2][col] = "=B2*2"  # openpyxl stores the formula only, as a generator script would
    report = _refused(loaded, raw_xlsx({"compounds": rows}, tmp_path / "f.xlsx"))
    from openpyxl.utils import get_column_letter

    _has(report, "formula_no_value", "compounds", 3, get_column_letter(col + 1))
    assert "=B2*2" in report.issues.kept[0].message("en")


def test_unknown_columns_and_sheets_warn_but_import(sqlite_engine: Engine, tmp_path: Path) -> None:
    data = ledger()
    rows = rows_of(data, "organisations")
    rows[0].append("备注")
    for r in rows[1:]:
        r.append("随便写")
    report = import_ledger(
        sqlite_engine,
        raw_xlsx({"organisations": rows, "统计": [["合计", 3]], "设备": []}, tmp_path / "w.xlsx"),
    )
    assert report.ok, report.as_dict()
    _has(report, "unknown_column", "organisations", 1, "备注")
    _has(report, "unknown_sheet")
    _has(report, "empty_sheet", "assets")


def test_title_rows_above_the_header_are_skipped(sqlite_engine: Engine, tmp_path: Path) -> None:
    rows = [["长春市老旧小区改造台账（2024 年）"], [], *rows_of(ledger(), "organisations", HeaderStyle.EN)]
    report = import_ledger(sqlite_engine, raw_xlsx({"单位": rows}, tmp_path / "t.xlsx"))
    assert report.ok and report.changes["organisations"].created == 11


def test_missing_required_column(loaded: Engine, tmp_path: Path) -> None:
    rows = [r[1:] for r in rows_of(ledger(), "organisations")]  # drop 单位名称
    report = _refused(loaded, raw_xlsx({"organisations": rows}, tmp_path / "m.xlsx"))
    _has(report, "missing_column", "organisations", 1, "name")


def test_huge_sheet_errors_are_capped_and_counted(loaded: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "huge"
    directory.mkdir()
    lines = ["asset_code,compound_code,kind"] + [f"A{i},NOPE,elevator" for i in range(100_000)]
    (directory / "assets.csv").write_text("\n".join(lines))
    report = _refused(loaded, directory)
    assert report.issues.errors == 100_000
    assert len(report.issues.kept) == 200 and report.issues.omitted == 99_800


def test_row_and_size_limits(loaded: Engine, tmp_path: Path) -> None:
    path = xlsx(ledger(), tmp_path / "l.xlsx")
    report = _refused(loaded, path, ImportOptions(limits=ReadLimits(max_rows_per_sheet=10)))
    _has(report, "too_many_rows", "assets")
    report = _refused(loaded, path, ImportOptions(limits=ReadLimits(max_file_bytes=1000)))
    _has(report, "file_too_large")
    csv_report = _refused(
        loaded, csv_dir(ledger(), tmp_path / "c"), ImportOptions(limits=ReadLimits(max_rows_per_sheet=10))
    )
    _has(csv_report, "too_many_rows", "assets", 12)


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("broken.xlsx", b"PK\x03\x04 this is not a workbook", "file_unreadable"),
        ("ledger.pdf", b"%PDF-1.4", "unsupported_file"),
        ("notes.csv", b"a,b\n1,2\n", "csv_sheet_unknown"),
    ],
)
def test_unreadable_files(loaded: Engine, tmp_path: Path, name: str, content: bytes, code: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _has(_refused(loaded, path), code)


def test_missing_file(loaded: Engine, tmp_path: Path) -> None:
    _has(_refused(loaded, tmp_path / "nothing.xlsx"), "file_missing")


def test_one_bad_row_among_many_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    data = ledger(compounds=4, assets_per_compound=50)
    data["assets"][-1]["install_date"] = "not a date"
    before = snapshot(engine)
    report = import_ledger(engine, xlsx(data, tmp_path / "l.xlsx"))
    assert not report.ok and report.issues.errors == 1
    assert snapshot(engine) == before


def test_a_zip_bomb_is_refused_before_it_is_unpacked(loaded: Engine, tmp_path: Path) -> None:
    # a valid workbook whose first sheet is replaced by 15 MB of one repeated row, packed to ~50 KB
    source, bomb = xlsx(ledger(), tmp_path / "l.xlsx"), tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source) as given, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        sheet = next(n for n in given.namelist() if n.startswith("xl/worksheets/"))
        for name in given.namelist():
            if name != sheet:
                out.writestr(name, given.read(name))
        with out.open(sheet, "w") as stream:
            stream.write(
                b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            )
            for _ in range(300):
                stream.write(b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 1000)
            stream.write(b"</sheetData></worksheet>")
    assert bomb.stat().st_size < 200_000
    started = time.monotonic()
    _has(_refused(loaded, bomb), "unzipped_too_large")
    assert time.monotonic() - started < 5  # refused from the archive's directory, nothing unpacked
    report = _refused(loaded, source, ImportOptions(limits=ReadLimits(max_unzipped_bytes=1000)))
    _has(report, "unzipped_too_large")


@pytest.mark.parametrize("write", [xlsx, csv_dir])
def test_ids_with_control_characters_never_reach_the_registry(
    sqlite_engine: Engine, tmp_path: Path, write: Callable[[Ledger, Path], Path]
) -> None:
    data = ledger()
    code, device = data["compounds"][0]["code"], data["assets"][0]["device_id"]
    data["compounds"][0]["code"] = code + "\n"  # a trailing line break is trimmed like any blank
    data["assets"][0]["device_id"] = device + "\n"
    suffix = ".xlsx" if write is xlsx else ""
    assert import_ledger(sqlite_engine, write(data, tmp_path / f"trimmed{suffix}")).ok
    with sqlite_engine.connect() as conn:
        assert code in set(conn.scalars(select(Compound.code)))
        assert device in set(conn.scalars(select(DeviceBinding.device_id)))
        stored = [*conn.scalars(select(Compound.code)), *conn.scalars(select(DeviceBinding.device_id))]
    assert not any(c in value for value in stored for c in "\n\r\t\x0b\x00")
    inside = ledger()
    inside["compounds"][0]["code"] = "C0\x0b001"
    inside["assets"][1]["device_id"] = inside["assets"][1]["device_id"][:-1] + "\t1"
    report = _refused(sqlite_engine, write(inside, tmp_path / f"inside{suffix}"))
    _has(report, "control_character", "compounds", 2, "code")
    _has(report, "bad_device_id", "assets", 3, "device_id")
