"""Write ledger records as an .xlsx workbook or as CSV files, with Chinese or English headers."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..text import csv_escape, is_formula_like, ooxml_escape
from .ledger import SHEETS, Column


class HeaderStyle(StrEnum):
    """Which header each column gets."""

    ZH = "zh"
    EN = "en"
    KEY = "key"


def header(col: Column, style: HeaderStyle) -> str:
    """The header text of ``col``."""
    return {HeaderStyle.ZH: col.zh, HeaderStyle.EN: col.en, HeaderStyle.KEY: col.key}[style]


def _cell(value: Any, ws: Any) -> Any:
    """An .xlsx cell: text always as text (never a formula), escaped where XML cannot hold it, and
    marked for Excel as literal text when it starts like a formula."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if not isinstance(value, str):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=None)
    cell.value, cell.data_type = ooxml_escape(value), "s"
    if is_formula_like(value):
        cell.quotePrefix = True
    return cell


def write_xlsx(
    sheets: Mapping[str, Iterable[Mapping[str, Any]]], path: Path, style: HeaderStyle = HeaderStyle.ZH
) -> None:
    """One worksheet per ledger sheet (titled by its English name), in import order."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for name, sheet in SHEETS.items():
        if name not in sheets:
            continue
        ws = wb.create_sheet(name)
        ws.append([header(c, style) for c in sheet.columns])
        for record in sheets[name]:
            ws.append([_cell(record.get(c.key), ws) for c in sheet.columns])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def write_csv_dir(
    sheets: Mapping[str, Iterable[Mapping[str, Any]]], directory: Path, style: HeaderStyle = HeaderStyle.ZH
) -> None:
    """One ``<sheet>.csv`` per ledger sheet (UTF-8 with BOM, so Excel opens it correctly)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, sheet in SHEETS.items():
        if name not in sheets:
            continue
        with open(directory / f"{name}.csv", "w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([header(c, style) for c in sheet.columns])
            for record in sheets[name]:
                writer.writerow([_csv_cell(record.get(c.key)) for c in sheet.columns])


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return csv_escape(value)  # formula prefixes neutralised (OWASP), control characters escaped
    return str(value)
