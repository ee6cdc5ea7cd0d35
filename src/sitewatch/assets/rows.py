"""Typing and validation of ledger cells: raw values in, typed values or per-cell findings out."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from ..contract import DeviceKind
from ..text import code_point, control_character
from .ledger import KIND_LABELS_ZH, MANAGEMENT_MODE_ZH, Column, ColumnType, ManagementMode, OrgType, Sheet
from .reader import NO_VALUE, RawSheet
from .report import Issues

MAX_TEXT = 500

ORG_TYPE_ZH: Mapping[OrgType, tuple[str, ...]] = {
    OrgType.PROPERTY_COMPANY: ("物业公司", "物业"),
    OrgType.CONTRACTOR: ("维保单位", "维保公司"),
    OrgType.UTILITY: ("公用事业单位", "自来水公司", "供电公司"),
    OrgType.BUREAU: ("住建局", "街道", "街道办", "主管部门"),
    OrgType.COMMUNITY: ("社区居委会", "社区", "物业服务中心", "居委会"),
}
METER_SCOPES: Mapping[str, str] = {
    "household": "household", "户表": "household", "户": "household",
    "building": "building", "总表": "building", "楼栋表": "building", "楼栋总表": "building",
}  # fmt: skip
_TRUE = {"是", "yes", "y", "true", "t", "1", "已接入", "√"}
_FALSE = {"否", "no", "n", "false", "f", "0", "未接入", "×"}
_DATE_RE = re.compile(
    r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(?:[T ]00:00(?::00)?)?\s*$"
)

# (low, high) of numeric columns; a value outside is a typing mistake, not a fact
RANGES: Mapping[str, tuple[float, float]] = {
    "year_built": (1900, 2100), "renovation_year": (1990, 2100), "buildings": (0, 10_000),
    "households": (0, 1_000_000), "floor_area_m2": (0, 1e8), "longitude": (-180, 180),
    "latitude": (-90, 90), "floors": (1, 200), "units": (0, 100), "rated_load_kg": (0, 100_000),
    "floors_served": (0, 200), "charger_power_kw": (0, 2000), "wattage_w": (0, 100_000),
    "meter_size_mm": (0, 3000), "response_minutes": (0, 100_000), "arrival_minutes": (0, 100_000),
}  # fmt: skip


def choices(mapping: Mapping[str, str]) -> str:
    """The accepted values of a vocabulary, for a message."""
    return ", ".join(sorted(set(mapping.values())))


def _vocab(values: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value, labels in values.items():
        out[str(value).lower()] = str(value)
        for label in labels:
            out[label.lower()] = str(value)
    return out


KINDS = _vocab({k.value: (KIND_LABELS_ZH.get(k.value, ""),) for k in DeviceKind})
MODES = _vocab({m.value: (MANAGEMENT_MODE_ZH[m], m.name.lower()) for m in ManagementMode})
MODES.update({"专业物业": "property_company", "物业服务中心": "service_centre", "自治": "self_governance"})
ORG_TYPES = _vocab({t.value: labels for t, labels in ORG_TYPE_ZH.items()})
KINDS.pop("", None)


def parse_cell(col: Column, value: Any) -> tuple[Any, tuple[str, dict[str, Any]] | None]:
    """The typed value of one cell, or None and (error code, params)."""
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            value = None
    if value is None:
        return None, None
    shown = str(value)[:60]
    if col.type is ColumnType.TEXT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # "3" typed into a numeric Excel cell arrives as 3.0
        if isinstance(value, dt.datetime):
            value = value.date().isoformat() if value.time() == dt.time() else value.isoformat()
        text = str(value).strip()
        return text, _text_problem(text)
    if col.type is ColumnType.INT:
        if isinstance(value, bool):
            return None, ("not_int", {"value": shown})
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        if isinstance(value, int):
            return value, None
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,15}(\.0+)?", value.replace(",", "")):
            return int(float(value.replace(",", ""))), None
        return None, ("not_int", {"value": shown})
    if col.type is ColumnType.FLOAT:
        if isinstance(value, bool):
            return None, ("not_number", {"value": shown})
        try:
            number = float(value.replace(",", "")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            return None, ("not_number", {"value": shown})
        if not math.isfinite(number):
            return None, ("not_number", {"value": shown})
        return number, None
    if col.type is ColumnType.DATE:
        return _parse_date(value, shown)
    # BOOL
    if isinstance(value, bool):
        return value, None
    token = str(int(value) if isinstance(value, float) and value.is_integer() else value).lower()
    if token in _TRUE:
        return True, None
    if token in _FALSE:
        return False, None
    return None, ("not_bool", {"value": shown})


def _text_problem(text: str) -> tuple[str, dict[str, Any]] | None:
    """Why a text cell cannot be kept: too long, or a control character (line breaks, which Excel
    cells may hold, aside)."""
    if len(text) > MAX_TEXT:
        return "too_long", {"length": len(text), "limit": MAX_TEXT}
    found = control_character(text, multiline=True)
    if found is not None:
        return "control_character", {"char": code_point(found[1]), "position": found[0]}
    return None


def _parse_date(value: Any, shown: str) -> tuple[Any, tuple[str, dict[str, Any]] | None]:
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and (m := _DATE_RE.match(value)):
        try:
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None, ("not_date", {"value": shown})
    else:
        return None, ("not_date", {"value": shown})
    if not 1900 <= day.year <= 2100:
        return None, ("not_date", {"value": shown})
    return day, None


def parse_sheet(raw: RawSheet, issues: Issues) -> list[tuple[int, dict[str, Any]]]:
    """Typed, validated records of one sheet; rows with any error are left out (and reported).

    A record holds only the columns with a value; absent optional columns read as missing keys.
    """
    sheet = raw.sheet
    by_key = {c.key: c for c in sheet.columns}
    required = [c.key for c in sheet.columns if c.required]
    checked = set(RANGES) | {"kind", "management_mode", "meter_scope", "kinds"}
    if sheet.name == "organisations":
        checked.add("type")
    out: list[tuple[int, dict[str, Any]]] = []
    for row_no, cells in raw.rows:
        record: dict[str, Any] = {}
        ok = True
        for key, value in cells.items():
            col = by_key[key]
            if value is NO_VALUE:
                ok = False  # already reported as formula_no_value
                record[key] = NO_VALUE
                continue
            problem: tuple[str, dict[str, Any]] | None = None
            if col.type is ColumnType.TEXT and type(value) is str:
                typed: Any = value.strip() or None
                problem = _text_problem(typed) if typed is not None else None
            else:
                typed, problem = parse_cell(col, value)
            if problem is None and typed is not None and key in checked:
                problem = _check_domain(key, typed)
                if problem is None:
                    typed = _canonical(sheet, key, typed)
            if problem is not None:
                issues.error(problem[0], sheet.name, row_no, key, **problem[1])
                ok = False
                record[key] = NO_VALUE
            elif typed is not None:
                record[key] = typed
        for key in required:
            if key not in record:
                issues.error("required", sheet.name, row_no, key)
                ok = False
        if ok:
            out.append((row_no, record))
    return out


def _check_domain(key: str, value: Any) -> tuple[str, dict[str, Any]] | None:
    bounds = RANGES.get(key)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return "out_of_range", {"value": value, "low": bounds[0], "high": bounds[1]}
    vocab = {"kind": KINDS, "management_mode": MODES, "meter_scope": METER_SCOPES}.get(key)
    if key == "type":
        vocab = ORG_TYPES
    if vocab is not None and str(value).lower() not in vocab:
        return "bad_choice", {"value": str(value)[:60], "choices": choices(vocab)}
    if key == "kinds":
        for part in split_list(str(value)):
            if part.lower() not in KINDS:
                return "bad_choice", {"value": part[:60], "choices": choices(KINDS)}
    return None


def _canonical(sheet: Sheet, key: str, value: Any) -> Any:
    """Vocabulary values in their canonical (English enum) form."""
    if key == "kind":
        return KINDS[str(value).lower()]
    if key == "management_mode":
        return MODES[str(value).lower()]
    if key == "meter_scope":
        return METER_SCOPES[str(value).lower()]
    if key == "type" and sheet.name == "organisations":
        return ORG_TYPES[str(value).lower()]
    if key == "kinds":
        return ",".join(sorted({KINDS[p.lower()] for p in split_list(str(value))}))
    return value


def split_list(value: str) -> list[str]:
    """Items of a comma/semicolon/、-separated cell."""
    return [p.strip() for p in re.split(r"[,;，；、/]", value) if p.strip()]
