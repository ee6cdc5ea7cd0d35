"""Import findings and the import report; their texts are catalog messages (zh_CN and English)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..i18n import N_, _, current_language, pgettext, translate, using

MAX_REPORTED_ISSUES = 200  # findings kept in full; beyond that only counted


class Severity(StrEnum):
    """An error stops the import; a warning does not."""

    ERROR = "error"
    WARNING = "warning"


# code -> the reason (a catalog message); placeholders filled from Issue.params
MESSAGES: Mapping[str, str] = {
    "file_missing": N_("file not found: {path}"),
    "file_too_large": N_("file too large: {size} bytes, limit {limit} bytes"),
    "file_unreadable": N_("cannot read the file: {reason}"),
    "unzipped_too_large": N_("the workbook unpacks to {size} bytes from {packed} (at most {limit}, and {ratio} times the file): refused as a possible zip bomb"),
    "unsupported_file": N_("unsupported file type {suffix} (use .xlsx, .csv or a directory of CSV files)"),
    "csv_sheet_unknown": N_("cannot tell which sheet the CSV file {name} holds (name it after a sheet, e.g. assets.csv or 设备.csv)"),
    "unknown_sheet": N_("unknown sheet {name!r} ignored"),
    "no_sheets": N_("the file holds no recognisable ledger sheet"),
    "empty_sheet": N_("the sheet is empty"),
    "unknown_column": N_("unknown column {header!r} ignored"),
    "duplicate_column": N_("column {header!r} appears twice"),
    "missing_column": N_("required column {en!r} ({zh}) is missing"),
    "too_many_rows": N_("more than {limit} rows, the import is refused"),
    "formula_no_value": N_("formula {formula} has no computed value (recalculate and save in Excel)"),
    "required": N_("required value is empty"),
    "not_int": N_("expected an integer, got {value!r}"),
    "not_number": N_("expected a number, got {value!r}"),
    "not_date": N_("expected a date (yyyy-mm-dd), got {value!r}"),
    "not_bool": N_("expected yes/no, got {value!r}"),
    "too_long": N_("text too long ({length} characters, limit {limit})"),
    "out_of_range": N_("value {value} outside [{low}, {high}]"),
    "bad_choice": N_("{value!r} is not a valid value (one of: {choices})"),
    "duplicate_key": N_("duplicates row {first} ({key})"),
    "unknown_ref": N_("unknown {what_en} ({what_zh}) {value!r}"),
    "duplicate_serial": N_("serial number {value!r} is already used by asset {other}"),
    "duplicate_device": N_("device id {value!r} is already used by asset {other}"),
    "code_clash": N_(
        "compound code {value!r} clashes with {other!r} (equal but for case, or one is the other followed "
        "by '-'): device ids would not tell the compounds apart; choose another code"
    ),
    "control_character": N_("holds the control character {char} at position {position}; remove it"),
    "bad_device_id": N_("device id {value!r} must look like <compound code>-<local name>"),
    "unit_out_of_range": N_("unit {value!r} is not one of the {units} units of building {building}"),
    "bad_code": N_("code {value!r} may hold only letters, digits, '-' and '_' (starting with a letter or digit, at most 40)"),
    "date_order": N_("end date is before start date"),
    "bad_member": N_("member {value!r} must look like name:phone"),
    "database_conflict": N_("the database refused the write: {reason}"),
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

    def message(self, language: str | None = None) -> str:
        """The reason, in ``language`` (zh_CN or en) or else the current language."""
        if language is None:
            return _(MESSAGES[self.code], **self.params)
        return translate(MESSAGES[self.code], language, **self.params)

    def location(self, language: str | None = None) -> str:
        """Where the finding is, e.g. ``sheet assets, row 12, column serial_no``."""
        with using(language or current_language()):
            parts = []
            if self.sheet:
                parts.append(_("sheet {sheet}", sheet=self.sheet))
            if self.row is not None:
                parts.append(_("row {row}", row=self.row))
            if self.column:
                parts.append(_("column {column}", column=self.column))
            return pgettext("list separator", ", ").join(parts)

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        """A JSON-ready form (the message in ``language``, else the current language)."""
        return {
            "severity": self.severity.value,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message(language),
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

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        """A JSON-ready form (messages in ``language``, else the current language)."""
        return {
            "ok": self.ok,
            "committed": self.committed,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "errors": self.issues.errors,
            "warnings": self.issues.warnings,
            "omitted": self.issues.omitted,
            "issues": [i.as_dict(language) for i in self.issues.kept],
            "changes": {
                name: {"rows": c.rows, "created": c.created, "updated": c.updated, "unchanged": c.unchanged}
                for name, c in self.changes.items()
            },
        }
