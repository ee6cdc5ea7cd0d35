"""docs/contract.md's tables of kinds, metrics and events say what the contract says, in both
languages of the catalog."""

from __future__ import annotations

import re
from pathlib import Path

from sitewatch.contract import KINDS
from sitewatch.i18n import translate

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### ", text.split("## Device kinds, metrics and events", 1)[1], flags=re.M)
    return {part.split(" ", 1)[0]: part for part in parts[1:]}


def test_every_kind_is_documented_as_the_contract_and_the_catalog_say() -> None:
    sections = _sections()
    assert set(sections) == {k.value for k in KINDS}
    for kind, spec in KINDS.items():
        section = sections[kind.value]
        heading = section.splitlines()[0]
        assert heading == f"{kind.value} ({translate(spec.label, 'zh_CN')}, id code `{spec.code}`)"
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        assert [r.split("|")[1].strip().strip("`") for r in rows] == list(spec.metrics)
        for row, metric in zip(rows, spec.metrics.values(), strict=True):
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert cells[1] == (metric.unit or "—")
            assert cells[2] == metric.type.value
            assert cells[3] == f"{metric.minimum:g} … {metric.maximum:g}"
            assert cells[4].startswith(metric.description)
            if metric.states:
                codes = ", ".join(f"{i}={s}" for i, s in enumerate(metric.states))
                assert cells[4] == f"{metric.description} (codes: {codes})"
            assert cells[5] == translate(metric.description, "zh_CN")
        events = ", ".join(
            f"`{e.name}` ({e.severity.value}{', stateful' if e.stateful else ''})" for e in spec.events.values()
        )
        assert f"Events: {events}" in section
