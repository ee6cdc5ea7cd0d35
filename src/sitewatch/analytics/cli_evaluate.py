"""``sitewatch analytics evaluate``: the rules replayed over a backfill, scored against its labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..contract import Finding
from ..i18n import _
from ..settings import load_settings
from .evaluate import BANDS, GENERIC, LEAD_SHOW_H, LEAD_TARGET_H, dumps
from .evaluate import evaluate as run_evaluation
from .rules import RulesError, load_rules


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


@click.command()
@click.option(
    "--history",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A `simulate backfill` output directory.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rules file replacing the shipped rules (default: SITEWATCH_ANALYTICS__RULES_FILE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--findings",
    "findings_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every finding message to this file (JSON lines, the contract's form).",
)
def evaluate(history: Path, rules_file: Path | None, as_json: bool, findings_out: Path | None) -> None:
    """Replay a backfill through the rules as the live service would, and score the findings."""
    for name in ("readings.parquet", "labels.parquet", "devices.parquet"):
        if not (history / name).exists():
            raise click.ClickException(_("{path} is not a backfill directory: {name} is missing",
                                         path=str(history), name=name))  # fmt: skip
    try:
        rules = load_rules(rules_file or load_settings().analytics.rules_file)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from None
    console = Console(stderr=as_json)
    with Progress(TextColumn(_("replaying")), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:  # fmt: skip
        task = bar.add_task("replay", total=None)
        kept: list[Finding] | None = [] if findings_out is not None else None
        result = run_evaluation(history, rules, lambda done, total: bar.update(task, completed=done, total=total),
                                keep=kept)  # fmt: skip
    if findings_out is not None and kept is not None:
        findings_out.write_bytes(b"".join(f.encode() + b"\n" for f in kept))
    if as_json:
        click.echo(dumps(result))
        return
    _table(console, result)


def _lead(row: dict[str, Any]) -> str:
    if row.get("lead_long_labelled") is None:
        return "–"
    return f"{row['lead_long_met']}/{row['lead_long_labelled']}"


def _table(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=_("Findings against the labels"))
    for header in (_("fault"), _("labelled"), _("detected"), _("missed"), _("false"), _("precision"),
                   _("recall"), *(_(b) for b in BANDS), _("announced"), _("not announced"),
                   _("median TTD (s)"), _("p95 TTD (s)"), _("min. lead (h)"), _("lead ≥ 24 h"), _("smallest found (r≥0.8)")):  # fmt: skip
        table.add_column(header, justify="left" if header == _("fault") else "right")
    rows = dict(result["faults"])
    rows[GENERIC] = result["generic"]
    for fault, r in rows.items():
        table.add_row(
            fault if fault != GENERIC else _("anomaly (no fault type)"),
            _fmt(r["labelled"]), _fmt(r["detected"]), _fmt(r["missed"]), _fmt(r["false_findings"]),
            _fmt(r["precision"]), _fmt(r["recall"]), *(_fmt(r["recall_by_band"][b]) for b in BANDS),
            _fmt(r["recall_announced"]), _fmt(r["recall_unannounced"]), _fmt(r["ttd_median_s"], 0),
            _fmt(r["ttd_p95_s"], 0), _fmt(r["lead_min_h"], 1), _lead(r),
            f"{_fmt(r['min_magnitude_recall_80'], 3)} {r['unit']}".strip() if r["min_magnitude_recall_80"] is not None else "–",
        )  # fmt: skip
    console.print(table)
    o = result["overall"]
    console.print(_("false findings per 100 device-months: {value} ({false} in {months} device-months)",
                    value=_fmt(o["false_findings_per_100_device_months"]), false=o["false_findings"],
                    months=_fmt(o["device_months"], 1)))  # fmt: skip
    console.print(_("findings from an outage (gateway or device silent in a power cut): {n}",
                    n=result["generic"]["outage_findings"]))  # fmt: skip
    console.print(_("labels the data cannot show, left out of recall: {n}", n=o["unobservable_left_out"]))
    console.print(_("the engine took {s} s for {n} readings: {rate} readings/s (the 267-compound city sends about 1,890 a second)",
                    s=_fmt(o["engine_s"], 1), n=_fmt(o["readings"]), rate=_fmt(o["engine_readings_per_s"], 0)))  # fmt: skip
    console.print(_("lead: from the first finding to the fault's end; \"lead ≥ 24 h\": of the gradual faults "
                    "the history shows for at least {h} h (a first day to grow, a day of lead), those flagged "
                    "24 h or more before their end", h=_fmt(LEAD_TARGET_H + LEAD_SHOW_H, 0)))  # fmt: skip
    console.print(_("a finding matches a label on its device and fault type up to {s} s after the label's end; "
                    "evaluated in {t} s", s=_fmt(o["tolerance_s"], 0), t=_fmt(o["seconds"], 1)))  # fmt: skip
