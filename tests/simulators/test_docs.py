"""docs/simulators.md states the catalogue the code has: units, bands, rates and device alarms."""

from __future__ import annotations

from pathlib import Path

from sitewatch.simulators.faults import BANDS, FAULT_TYPES
from sitewatch.simulators.harmless import HARMLESS_TYPES, OUTAGE_TYPES
from sitewatch.simulators.stats import DESCRIPTIONS

DOC = (Path(__file__).parents[2] / "docs" / "simulators.md").read_text(encoding="utf-8")


def _rows(name: str) -> list[list[str]]:
    """The cells of every table row of the doc whose first or second cell is `name`."""
    out = []
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and f"`{name}`" in cells[:2]:
            out.append(cells)
    return out


def _span(lo: float, hi: float) -> str:
    return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"


def test_the_fault_table_has_the_catalogues_sizes_and_rates() -> None:
    for name, spec in FAULT_TYPES.items():
        rows = _rows(name)
        sizes = next(r for r in rows if spec.magnitude.unit in r)
        assert [_span(*spec.magnitude.range(b)) for b in BANDS] == sizes[4:7], name
        assert f"{spec.per_year:g}" in sizes and spec.onset in sizes, name
        alarms = [r for r in rows if r is not sizes]
        if spec.alarm is None:
            continue
        alarm = alarms[0]
        assert f"`{spec.alarm.event}`" in alarm[1] and spec.alarm.trigger.value == alarm[2], name
        if spec.alarm.trigger.value != "gateway":
            assert alarm[3] == " / ".join(f"{d:.0%}" for d in spec.alarm.detect), name
            assert alarm[4:6] == [f"{spec.alarm.missed:.0%}", f"{spec.alarm.late:.0%}"], name
    for name in ("leak", "burst"):  # building meters have their own sizes
        scale = FAULT_TYPES[name].building_magnitude
        assert scale is not None
        index = DOC.index(f"| `{name}` |")
        row = DOC[index:].split("\n")[1]
        assert row.startswith("| | ↳ on a building") and [_span(*scale.range(b)) for b in BANDS] == [
            c.strip() for c in row.strip("|").split("|")[4:7]
        ], name


def test_the_harmless_and_outage_tables_have_the_catalogues_rates() -> None:
    for name, spec in HARMLESS_TYPES.items():
        row = _rows(name)[0]
        assert spec.per_year == 0 or f"{spec.per_year:g}" in row, name
        assert not spec.event or f"`{spec.event}`" in row[-1], name
    for name, outage in OUTAGE_TYPES.items():
        row = _rows(name)[0]
        assert row[2].startswith(f"{outage.per_year:g}") and row[3] == _span(*outage.hours), name


def test_every_realism_statistic_is_documented() -> None:
    for text in DESCRIPTIONS.values():
        assert f"| {text} |" in DOC, text
