"""Build ledger files for tests from sitewatch.assets.ledger's column definitions, hostile ones included."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from sitewatch.assets.ledger import SHEETS
from sitewatch.assets.workbook import HeaderStyle, header, write_csv_dir, write_xlsx

from .fixture_ledger import synthetic_ledger

Ledger = dict[str, list[dict[str, Any]]]


def ledger(compounds: int = 2, assets_per_compound: int = 12, seed: int = 7) -> Ledger:
    """A small valid ledger (deep-copied, so tests may mutate it)."""
    return copy.deepcopy(synthetic_ledger(compounds, assets_per_compound, seed))


def xlsx(
    data: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, style: HeaderStyle = HeaderStyle.ZH
) -> Path:
    """Write ``data`` as an .xlsx workbook."""
    write_xlsx(data, path, style)
    return path


def csv_dir(
    data: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, style: HeaderStyle = HeaderStyle.EN
) -> Path:
    """Write ``data`` as a directory of per-sheet CSV files."""
    write_csv_dir(data, path, style)
    return path


def raw_xlsx(sheets: Mapping[str, Sequence[Sequence[Any]]], path: Path) -> Path:
    """Write cells exactly as given (header rows, formulas such as ``"=A2*2"``, anything)."""
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(list(row))
    wb.save(path)
    return path


def rows_of(data: Ledger, sheet: str, style: HeaderStyle = HeaderStyle.ZH) -> list[list[Any]]:
    """A sheet of ``data`` as header + value rows, ready for :func:`raw_xlsx`."""
    cols = SHEETS[sheet].columns
    return [[header(c, style) for c in cols], *([r.get(c.key) for c in cols] for r in data[sheet])]
