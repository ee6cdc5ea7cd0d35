"""Import findings and the import report, each readable in zh-CN and in English."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_REPORTED_ISSUES = 200  # findings kept in full; beyond that only counted


class Severity(StrEnum):
    """An error stops the import; a warning does not."""

    ERROR = "error"
    WARNING = "warning"


# code -> (zh-CN, en); placeholders filled from Issue.params
MESSAGES: Mapping[str, tuple[str, str]] = {
    "file_missing": ("文件不存在：{path}", "file not found: {path}"),
    "file_too_large": (
        "文件过大：{size} 字节，上限 {limit} 字节",
        "file too large: {size} bytes, limit {limit} bytes",
    ),
    "file_unreadable": ("无法读取文件：{reason}", "cannot read the file: {reason}"),
    "unsupported_file": (
        "不支持的文件类型 {suffix}（请使用 .xlsx、.csv 或包含 CSV 的目录）",
        "unsupported file type {suffix} (use .xlsx, .csv or a directory of CSV files)",
    ),
    "csv_sheet_unknown": (
        "无法判断 CSV 文件 {name} 属于哪个工作表（文件名应为工作表名，如 assets.csv 或 设备.csv）",
        "cannot tell which sheet the CSV file {name} holds (name it after a sheet, e.g. assets.csv or 设备.csv)",
    ),
    "unknown_sheet": ("未知工作表“{name}”，已忽略", "unknown sheet {name!r} ignored"),
    "no_sheets": ("文件中没有可识别的台账工作表", "the file holds no recognisable ledger sheet"),
    "empty_sheet": ("工作表为空", "the sheet is empty"),
    "unknown_column": ("未知列“{header}”，已忽略", "unknown column {header!r} ignored"),
    "duplicate_column": ("列“{header}”重复出现", "column {header!r} appears twice"),
    "missing_column": ("缺少必填列“{zh}”", "required column {en!r} is missing"),
    "too_many_rows": (
        "行数超过上限 {limit}，导入中止",
        "more than {limit} rows, the import is refused",
    ),
    "formula_no_value": (
        "公式 {formula} 没有计算结果（请在 Excel 中重新计算并保存）",
        "formula {formula} has no computed value (recalculate and save in Excel)",
    ),
    "required": ("必填项为空", "required value is empty"),
    "not_int": ("应为整数，实际为“{value}”", "expected an integer, got {value!r}"),
    "not_number": ("应为数字，实际为“{value}”", "expected a number, got {value!r}"),
    "not_date": ("应为日期（年-月-日），实际为“{value}”", "expected a date (yyyy-mm-dd), got {value!r}"),
    "not_bool": ("应为 是/否，实际为“{value}”", "expected yes/no, got {value!r}"),
    "too_long": (
        "文本过长（{length} 字符，上限 {limit}）",
        "text too long ({length} characters, limit {limit})",
    ),
    "out_of_range": ("数值 {value} 超出范围 [{low}, {high}]", "value {value} outside [{low}, {high}]"),
    "bad_choice": (
        "“{value}”不是有效取值（可选：{choices}）",
        "{value!r} is not a valid value (one of: {choices})",
    ),
    "duplicate_key": (
        "与第 {first} 行重复（{key}）",
        "duplicates row {first} ({key})",
    ),
    "unknown_ref": ("引用的{what_zh}“{value}”不存在", "unknown {what_en} {value!r}"),
    "duplicate_serial": (
        "出厂编号“{value}”已用于资产 {other}",
        "serial number {value!r} is already used by asset {other}",
    ),
    "duplicate_device": (
        "设备编号“{value}”已用于资产 {other}",
        "device id {value!r} is already used by asset {other}",
    ),
    "bad_device_id": (
        "设备编号“{value}”应为“小区编码-本地编号”格式",
        "device id {value!r} must look like <compound code>-<local name>",
    ),
    "unit_out_of_range": (
        "单元号“{value}”不在楼栋 {building} 的 {units} 个单元内",
        "unit {value!r} is not one of the {units} units of building {building}",
    ),
    "bad_code": (
        "编码“{value}”只能包含字母、数字、- 和 _（以字母或数字开头，最长 40 个字符）",
        "code {value!r} may hold only letters, digits, '-' and '_' (starting with a letter or digit, at most 40)",
    ),
    "date_order": ("结束日期早于开始日期", "end date is before start date"),
    "bad_member": (
        "成员“{value}”应为“姓名:电话”",
        "member {value!r} must look like name:phone",
    ),
    "database_conflict": ("数据库拒绝写入：{reason}", "the database refused the write: {reason}"),
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about a ledger: where (sheet, row, column), what (code + params), how bad."""

    code: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity = Severity.ERROR

    def message(self, lang: str = "en") -> str:
        """The reason in ``lang`` (zh-CN or en)."""
        zh, en = MESSAGES[self.code]
        return (zh if lang.lower().startswith("zh") else en).format(**self.params)

    def location(self, lang: str = "en") -> str:
        """Where the finding is, e.g. ``assets row 12 column serial_no``."""
        zh = lang.lower().startswith("zh")
        parts = []
        if self.sheet:
            parts.append(f"工作表 {self.sheet}" if zh else f"sheet {self.sheet}")
        if self.row is not None:
            parts.append(f"第 {self.row} 行" if zh else f"row {self.row}")
        if self.column:
            parts.append(f"列 {self.column}" if zh else f"column {self.column}")
        return ("，" if zh else ", ").join(parts)

    def as_dict(self, lang: str = "en") -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "severity": self.severity.value,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message(lang),
        }


class Issues:
    """Collected findings: the first MAX_REPORTED_ISSUES kept, the rest counted."""

    def __init__(self, limit: int = MAX_REPORTED_ISSUES) -> None:
        self.limit = limit
        self.kept: list[Issue] = []
        self.errors = 0
        self.warnings = 0

    def add(self, issue: Issue) -> None:
        """Record one finding."""
        if issue.severity is Severity.ERROR:
            self.errors += 1
        else:
            self.warnings += 1
        if len(self.kept) < self.limit:
            self.kept.append(issue)

    def error(self, code: str, sheet: str | None = None, row: int | None = None,
              column: str | None = None, **params: Any) -> None:  # fmt: skip
        """Record an error."""
        self.add(Issue(code, sheet, row, column, params))

    def warn(self, code: str, sheet: str | None = None, row: int | None = None,
             column: str | None = None, **params: Any) -> None:  # fmt: skip
        """Record a warning."""
        self.add(Issue(code, sheet, row, column, params, Severity.WARNING))

    @property
    def omitted(self) -> int:
        """Findings counted but not kept."""
        return self.errors + self.warnings - len(self.kept)


@dataclass(slots=True)
class SheetChanges:
    """What an import did (or, on a dry run, would do) to one sheet's table."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class ImportReport:
    """Outcome of one import: findings, per-sheet changes, timing."""

    issues: Issues
    changes: dict[str, SheetChanges] = field(default_factory=dict)
    committed: bool = False
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the ledger was accepted (no errors)."""
        return self.issues.errors == 0

    @property
    def rows(self) -> int:
        """Ledger rows imported over all sheets (derived tables such as bindings not counted)."""
        from .ledger import SHEETS

        return sum(c.rows for name, c in self.changes.items() if name in SHEETS)

    def as_dict(self, lang: str = "en") -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "ok": self.ok,
            "committed": self.committed,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "errors": self.issues.errors,
            "warnings": self.issues.warnings,
            "omitted": self.issues.omitted,
            "issues": [i.as_dict(lang) for i in self.issues.kept],
            "changes": {
                name: {"rows": c.rows, "created": c.created, "updated": c.updated, "unchanged": c.unchanged}
                for name, c in self.changes.items()
            },
        }
