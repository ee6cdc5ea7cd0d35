"""Read ledger files (Excel .xlsx, one CSV, or a directory of CSVs) into raw rows per sheet.

Reading only locates cells: which sheet, which row (as the user sees it in Excel: 1-based, header
included), which column key. Typing and validation happen in :mod:`sitewatch.assets.rows`.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..text import csv_unescape
from .ledger import SHEETS, Sheet, header_map, normalise_header
from .report import Issues


class _NoValue:
    """Marks a cell that must not be used (a formula without a cached value, already reported)."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()
HEADER_SEARCH_ROWS = 5  # a title row or two above the header row is common in hand-kept ledgers


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that keep a hostile or mistaken file from exhausting the machine."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_rows_per_sheet: int = 500_000
    # an .xlsx is a zip: what its members unpack to, and how much larger than the file that may be
    # (a ledger packs 5-30x; a zip bomb of a megabyte unpacks to gigabytes before any row is counted)
    max_unzipped_bytes: int = 1024 * 1024 * 1024
    max_zip_ratio: int = 100


@dataclass(slots=True)
class RawSheet:
    """The data rows of one ledger sheet: (row number, {column key: cell value})."""

    sheet: Sheet
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    present: set[str] = field(default_factory=set)  # column keys the header row carries


def sheet_for_name(name: str) -> Sheet | None:
    """The ledger sheet a sheet title or file stem names (English key or Chinese name)."""
    norm = normalise_header(name)
    for sheet in SHEETS.values():
        if norm in (sheet.name, normalise_header(sheet.zh)):
            return sheet
    return None


def read_ledger(
    path: Path, issues: Issues, limits: ReadLimits = ReadLimits(),
    progress: Callable[[int], None] | None = None,
) -> dict[str, RawSheet]:  # fmt: skip
    """Read every recognisable sheet of ``path``; problems go to ``issues``."""
    path = Path(path)
    if not path.exists():
        issues.error("file_missing", path=str(path))
        return {}
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv") if path.is_dir() else [path]
    size = sum(p.stat().st_size for p in files)
    if size > limits.max_file_bytes:
        issues.error("file_too_large", size=size, limit=limits.max_file_bytes)
        return {}
    out: dict[str, RawSheet] = {}
    try:
        if path.is_dir() or path.suffix.lower() == ".csv":
            for file in files:
                sheet = sheet_for_name(file.stem) or _guess_csv_sheet(file)
                if sheet is None:
                    issues.error("csv_sheet_unknown", name=file.name)
                    continue
                rows = _csv_rows(file)
                out[sheet.name] = _collect(sheet, rows, issues, limits, progress)
        elif path.suffix.lower() in (".xlsx", ".xlsm"):
            out = _read_xlsx(path, issues, limits, progress)
        else:
            issues.error("unsupported_file", suffix=path.suffix or path.name)
            return {}
    except Exception as exc:  # any parser failure on a hostile file is a refusal, not a crash
        issues.error("file_unreadable", reason=f"{type(exc).__name__}: {exc}"[:300])
        return {}
    if not out and issues.errors == 0:
        issues.error("no_sheets")
    return out


def _decode(data: bytes) -> str:
    """CSV text: UTF-8 (with or without BOM), else GB18030 (what Excel in China saves)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _csv_rows(file: Path) -> Iterator[tuple[Any, ...]]:
    text = _decode(file.read_bytes())
    for row in csv.reader(io.StringIO(text, newline="")):
        yield tuple(csv_unescape(cell) if cell.strip() != "" else None for cell in row)


def _guess_csv_sheet(file: Path) -> Sheet | None:
    """A single CSV not named after a sheet: the sheet whose required headers it carries."""
    header = next(_csv_rows(file), ())
    found = {header_map(s).get(normalise_header(h)) for s in SHEETS.values() for h in header if h}
    best = [s for s in SHEETS.values() if all(c.key in found for c in s.columns if c.required)]
    # the assets and buildings sheets share compound_code; prefer the sheet with the most matches
    best.sort(key=lambda s: -sum(1 for h in header if h and normalise_header(h) in header_map(s)))
    return best[0] if best else None


def _read_xlsx(
    path: Path, issues: Issues, limits: ReadLimits, progress: Callable[[int], None] | None
) -> dict[str, RawSheet]:
    """Values through calamine (Rust; the cached results of formulas), formulas by an XML scan."""
    from python_calamine import CalamineWorkbook

    with zipfile.ZipFile(path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    packed = max(path.stat().st_size, 1)
    bomb = unzipped > 10 * 1024 * 1024 and unzipped > limits.max_zip_ratio * packed
    if unzipped > limits.max_unzipped_bytes or bomb:
        issues.error(
            "unzipped_too_large", size=unzipped, packed=packed, limit=limits.max_unzipped_bytes,
            ratio=limits.max_zip_ratio,
        )  # fmt: skip
        return {}
    workbook = CalamineWorkbook.from_path(str(path))
    formulas = formulas_without_value(path)
    out: dict[str, RawSheet] = {}
    for title in workbook.sheet_names:
        sheet = sheet_for_name(title)
        if sheet is None:
            issues.warn("unknown_sheet", name=title)
            continue
        ws = workbook.get_sheet_by_name(title)
        if ws.total_height > limits.max_rows_per_sheet + HEADER_SEARCH_ROWS:
            issues.error("too_many_rows", sheet.name, limit=limits.max_rows_per_sheet)
            continue
        rows: Iterable[Any] = ws.to_python(skip_empty_area=False)  # empty cells are ""
        bad = formulas.get(title)
        if bad:
            rows = _mask_formulas(rows, bad, sheet, issues)
        out[sheet.name] = _collect(sheet, rows, issues, limits, progress)
    return out


_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_FORMULA_RE = re.compile(rb"<(?:\w+:)?f[\s>/]")


def formulas_without_value(path: Path) -> dict[str, dict[tuple[int, int], str]]:
    """Per sheet title, the cells ((row, column), 1-based) holding a formula but no cached value."""
    import xml.etree.ElementTree as ET

    out: dict[str, dict[tuple[int, int], str]] = {}
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if not any(_has_formula(archive, n) for n in names if n.startswith("xl/worksheets/")):
            return out
        workbook = ET.fromstring(archive.read("xl/workbook.xml"))
        rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target", "") for r in rels}
        for sheet in workbook.iter(f"{{{_NS_MAIN}}}sheet"):
            target = targets.get(sheet.get(f"{{{_NS_REL}}}id"), "")
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            if member in names:
                found = _scan_sheet(archive, member)
                if found:
                    out[sheet.get("name", "")] = found
    return out


def _has_formula(archive: zipfile.ZipFile, member: str) -> bool:
    with archive.open(member) as stream:
        tail = b""
        while chunk := stream.read(1 << 20):
            window = tail + chunk
            # Excel and openpyxl write <f>; a namespace prefix (<x:f>) is rare, so the regex runs only then
            if b"<f>" in window or b"<f " in window or (b":f" in window and _FORMULA_RE.search(window)):
                return True
            tail = chunk[-16:]
    return False


def _scan_sheet(archive: zipfile.ZipFile, member: str) -> dict[tuple[int, int], str]:
    """Stream one worksheet's XML; keep cells with <f> and without a non-empty <v>."""
    from xml.parsers import expat

    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

    found: dict[tuple[int, int], str] = {}
    state: dict[str, Any] = {"cell": None, "formula": None, "value": False, "text": None}

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(":")[2]
        if local == "c":
            state.update(cell=attrs.get("r"), formula=None, value=False, text=None)
        elif local in ("f", "v"):
            state["text"] = []
            if local == "f":
                state["formula"] = ""

    def chars(data: str) -> None:
        if state["text"] is not None:
            state["text"].append(data)

    def end(name: str) -> None:
        local = name.rpartition(":")[2]
        if local == "f":
            state["formula"] = "=" + "".join(state["text"] or [])
            state["text"] = None
        elif local == "v":
            state["value"] = bool("".join(state["text"] or []).strip())
            state["text"] = None
        elif local == "c" and state["formula"] is not None and not state["value"] and state["cell"]:
            letters, row = coordinate_from_string(state["cell"])
            found[(row, column_index_from_string(letters))] = state["formula"]

    parser = expat.ParserCreate(namespace_separator=":")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    with archive.open(member) as stream:
        parser.ParseFile(stream)
    return found


def _mask_formulas(
    rows: Iterable[tuple[Any, ...]], bad: dict[tuple[int, int], str], sheet: Sheet, issues: Issues
) -> Iterator[tuple[Any, ...]]:
    """Replace formula cells that carry no cached value by NO_VALUE, reporting each."""
    from openpyxl.utils import get_column_letter

    by_row: dict[int, list[tuple[int, str]]] = {}
    for (row, col), formula in bad.items():
        by_row.setdefault(row, []).append((col, formula))
    for row_no, values in enumerate(rows, start=1):
        cells = by_row.get(row_no)
        if cells:
            width = max(len(values), *(c for c, _ in cells))
            masked = list(values) + [None] * (width - len(values))
            for col, formula in cells:
                masked[col - 1] = NO_VALUE
                issues.error(
                    "formula_no_value", sheet.name, row_no, get_column_letter(col), formula=formula[:80]
                )
            values = tuple(masked)
        yield values


def _collect(
    sheet: Sheet, rows: Iterable[tuple[Any, ...]], issues: Issues, limits: ReadLimits,
    progress: Callable[[int], None] | None,
) -> RawSheet:  # fmt: skip
    """Find the header row, map columns to keys, keep the non-empty data rows."""
    raw = RawSheet(sheet)
    known = header_map(sheet)
    iterator = iter(rows)
    columns: list[str | None] | None = None
    row_no = 0
    for row_no, row in enumerate(iterator, start=1):
        if any(isinstance(c, str) and normalise_header(c) in known for c in row):
            columns = _columns(sheet, row, row_no, known, issues)
            raw.present = {k for k in columns if k is not None}
            break
        if row_no >= HEADER_SEARCH_ROWS:
            break
    if columns is None:
        issues.warn("empty_sheet", sheet.name)
        return raw
    width = len(columns)
    header_row = row_no
    pending = 0
    for row_no, row in enumerate(iterator, start=header_row + 1):
        record = {key: value for key, value in zip(columns, row[:width], strict=False)
                  if key is not None and value is not None and value != ""}  # fmt: skip
        if not record:
            continue
        if len(raw.rows) >= limits.max_rows_per_sheet:
            issues.error("too_many_rows", sheet.name, row_no, limit=limits.max_rows_per_sheet)
            break
        raw.rows.append((row_no, record))
        pending += 1
        if progress is not None and pending >= 5000:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    if not raw.rows:
        issues.warn("empty_sheet", sheet.name)
    return raw


def _columns(
    sheet: Sheet, header: tuple[Any, ...], row_no: int, known: dict[str, str], issues: Issues
) -> list[str | None]:
    """Column keys in header order; None for unknown or repeated columns."""
    keys: list[str | None] = []
    seen: set[str] = set()
    for cell in header:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            keys.append(None)
            continue
        key = known.get(normalise_header(cell))
        if key is None:
            issues.warn("unknown_column", sheet.name, row_no, str(cell)[:60], header=str(cell)[:60])
        elif key in seen:
            issues.error("duplicate_column", sheet.name, row_no, str(cell)[:60], header=str(cell)[:60])
            key = None
        else:
            seen.add(key)
        keys.append(key)
    for col in sheet.columns:
        if col.required and col.key not in seen:
            issues.error("missing_column", sheet.name, row_no, col.key, zh=col.zh, en=col.en)
    return keys
