"""Any text the registry accepts survives export → import unchanged, and an export never hands a
spreadsheet a formula or a control character."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sitewatch.assets.db import create_engine_for, transaction, upgrade
from sitewatch.assets.exporter import export_ledger, read_registry
from sitewatch.assets.importer import import_ledger
from sitewatch.assets.models import Asset, Compound, Organisation
from sitewatch.text import FORMULA_PREFIXES, control_character

from .ledger_builder import ledger, xlsx

HOSTILE = ["=1+2", '=HYPERLINK("http://x","y")', "+86 139 0000 0000", "-5", "@SUM(A1:A2)", "'quoted", "''",
           "'=x", "_x0041_", "_x005F_x0041_", "ＡＢＣ（１）", '带,逗号"引号"', "e\u0301", "😀 emoji", "\\N", "NULL"]  # fmt: skip


def _line(text: str) -> bool:
    return text == text.strip() and text != "" and control_character(text) is None


lines = st.one_of(st.sampled_from(HOSTILE), st.text(st.characters(exclude_categories=("Cs",)), max_size=30))
LINES = lines.filter(_line)
MULTILINE = (
    st.lists(st.sampled_from(["\n", "\t", "\r\n", "=", "a", "丙", "'", " "]), max_size=20)
    .map("".join)
    .map(str.strip)
)


Registries = dict[str, Engine]


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Registries:
    """A small registry every example writes its text into, and one registry per export format
    that every example's export is imported into (an import updates what changed)."""
    tmp = tmp_path_factory.mktemp("hostile")
    out = {}
    for name in ("source", "ledger.xlsx", "ledger_csv"):
        out[name] = create_engine_for(f"sqlite:///{tmp / (name + '.db')}")
        upgrade(out[name])
    assert import_ledger(out["source"], xlsx(ledger(compounds=1, assets_per_compound=3), tmp / "l.xlsx")).ok
    return out


def _round_trip(source: Engine, target: Engine, path: Path) -> dict[str, Any]:
    export_ledger(source, path)
    report = import_ledger(target, path)
    assert report.ok, [i.message("en") for i in report.issues.kept]
    with Session(target) as session:
        return read_registry(session)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(texts=st.lists(LINES, min_size=6, max_size=6), long_text=MULTILINE)
@example(texts=HOSTILE[:6], long_text="=cmd|' /C calc'!A0\n\t-2")
@example(texts=HOSTILE[6:12], long_text="'")
def test_any_accepted_text_survives_export_and_import(
    registries: Registries, tmp_path_factory: pytest.TempPathFactory, texts: list[str], long_text: str
) -> None:
    tmp = tmp_path_factory.mktemp("trip")
    source = registries["source"]
    with transaction(source) as session:
        compound = session.query(Compound).one()
        compound.name_en, compound.address, compound.renovation_content = (
            texts[0],
            texts[1],
            long_text or None,
        )
        asset = session.query(Asset).order_by(Asset.id).first()
        assert asset is not None
        asset.name, asset.manufacturer, asset.model = texts[2], texts[3], texts[4][:100]
        org = session.query(Organisation).order_by(Organisation.id).first()
        assert org is not None
        org.contact = texts[5][:100]
    with Session(source) as session:
        expected = read_registry(session)
    for name in ("ledger.xlsx", "ledger_csv"):
        assert _round_trip(source, registries[name], tmp / name) == expected, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workbook = load_workbook(tmp / "ledger.xlsx")
    cells = [c for ws in workbook.worksheets for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a formula in the export"
    for file in (tmp / "ledger_csv").glob("*.csv"):
        with open(file, encoding="utf-8-sig", newline="") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    assert not cell.startswith(FORMULA_PREFIXES), (file.name, cell)
                    assert control_character(cell, multiline=True) is None, (file.name, cell)


def test_text_stored_before_the_rule_exports_escaped_and_is_refused_at_import(
    registries: Registries, tmp_path: Path
) -> None:
    """A control character (only possible in a registry older than the rule) does not break the
    export; the import names the row to correct."""
    source = registries["source"]
    with transaction(source) as session:
        session.query(Compound).one().name_en = "bad\x1b[2Jname"
    try:
        for path in (tmp_path / "old.xlsx", tmp_path / "old_csv"):
            export_ledger(source, path)
            fresh = create_engine_for(f"sqlite:///{tmp_path / (path.name + '.db')}")
            upgrade(fresh)
            report = import_ledger(fresh, path)
            assert not report.ok
            errors = [(i.code, i.sheet, i.column) for i in report.issues.kept if i.severity == "error"]
            assert errors[0] == ("control_character", "compounds", "name_en"), errors
            assert {e[0] for e in errors[1:]} <= {"unknown_ref"}  # rows of the refused compound
            fresh.dispose()
    finally:
        with transaction(source) as session:
            session.query(Compound).one().name_en = None
