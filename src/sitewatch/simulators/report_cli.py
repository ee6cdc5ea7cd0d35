"""``sitewatch simulate stats`` and ``simulate baseline``: how realistic a backfill is, and how far the
obvious rules get on it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..i18n import _
from .faults import BANDS

HISTORY = click.option("--history", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
                       help="A directory written by `sitewatch simulate backfill`.")  # fmt: skip
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")


def _fmt(value: float | None, digits: int = 3) -> str:
    return (
        "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}g}"
    )


def _check(history: Path) -> None:
    missing = [
        n for n in ("readings.parquet", "labels.parquet", "devices.parquet") if not (history / n).exists()
    ]
    if missing:
        raise click.BadParameter(
            _("{path} is not a backfill of this version (missing {files}); write one with "
              "`sitewatch simulate backfill`", path=history, files=", ".join(missing)),
            param_hint="--history",
        )  # fmt: skip


@click.command("stats")
@HISTORY
@AS_JSON
def stats(history: Path, as_json: bool) -> None:
    """Normal-behaviour statistics of a backfill beside their reference ranges and sources."""
    from .stats import DESCRIPTIONS, realism

    _check(history)
    report = realism(history)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    console = Console()
    table = Table(title=_("Normal behaviour over {days:.1f} days", days=report.days))
    for column in (_("kind"), _("statistic"), _("value"), _("reference range"), _("in range"), _("source")):
        table.add_column(column)
    for s in report.stats:
        table.add_row(s.kind, _(DESCRIPTIONS[s.key]), f"{_fmt(s.value)} {s.unit}".strip(),
                      f"{s.low:g} … {s.high:g} {s.unit}".strip(), _("yes") if s.ok else _("NO"), _(s.source))  # fmt: skip
    console.print(table)
    faults = Table(title=_("Faults drawn, by magnitude band"))
    for column in (_("fault"), *(_(b.value) for b in BANDS), _("unit"), _("magnitudes"), _("announced"),
                   _("observable")):  # fmt: skip
        faults.add_column(column)
    for name, entry in report.faults.items():
        faults.add_row(name, *(str(entry[b.value]) for b in BANDS), entry.get("unit", ""),
                       f"{_fmt(entry.get('min'))} … {_fmt(entry.get('max'))}" if "min" in entry else "",
                       _fmt(entry.get("announced"), 2), _fmt(entry.get("observable"), 2))  # fmt: skip
    console.print(faults)
    console.print(_("harmless anomalies: {items}", items=_pairs(report.harmless)))
    console.print(_("outages: {items}", items=_pairs(report.outages)))
    ok = sum(s.ok for s in report.stats)
    click.echo(_("{ok} of {total} statistics in their reference range", ok=ok, total=len(report.stats)))


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "—"


@click.command("baseline")
@HISTORY
@AS_JSON
def baseline(history: Path, as_json: bool) -> None:
    """The obvious threshold rule per fault type, scored against a backfill's labels."""
    from .baseline import evaluate

    _check(history)
    scores = evaluate(history)
    if as_json:
        click.echo(json.dumps([s.to_json() for s in scores], ensure_ascii=False, indent=2))
        return
    table = Table(title=_("Trivial threshold rules against the labels"))
    for column in (_("fault"), _("rule"), *(_(b.value) for b in BANDS), _("false alarms"),
                   _("of which on harmless anomalies"), _("on outages"), _("on other faults"), _("on clean data")):  # fmt: skip
        table.add_column(column)
    for s in scores:
        found = [f"{s.found[b.value]}/{s.labels[b.value]}" for b in BANDS]
        fa = s.false_alarms
        harmless = sum(v for k, v in fa.items() if k.startswith("harmless:"))
        table.add_row(s.fault, _(s.text), *found, str(sum(fa.values())), str(harmless), str(fa.get("outage", 0)),
                      str(fa.get("other_fault", 0)), str(fa.get("clean", 0)))  # fmt: skip
    Console().print(table)
    click.echo(_("found / labelled per magnitude band; a false alarm is an alarm episode with no label of its "
                 "fault type on its device"))  # fmt: skip
