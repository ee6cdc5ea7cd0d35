"""``sitewatch assets``: migrate, import and export ledgers, manage API tokens (``sitewatch serve``
serves the REST API)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..i18n import N_, _
from ..settings import load_settings
from .token_cli import token


@click.group()
def assets() -> None:
    """The asset registry: hierarchy, compounds, buildings, assets, device bindings, contracts."""


@assets.command()
@click.argument("action", type=click.Choice(["upgrade", "downgrade", "current"]), default="upgrade")
@click.argument("revision", required=False)
def migrate(action: str, revision: str | None) -> None:
    """Migrate the registry schema (upgrade [REV], default heads; downgrade REV, e.g. base)."""
    from .db import create_engine_for, current_revision, downgrade, upgrade

    engine = create_engine_for(load_settings())
    if action == "upgrade":
        upgrade(engine, revision or "heads")
    elif action == "downgrade":
        if not revision:
            raise click.UsageError("downgrade needs a revision, e.g. `downgrade base`")
        downgrade(engine, revision)
    click.echo(f"schema revision: {current_revision(engine) or 'base (empty)'}")


@assets.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--max-rows", type=int, default=500_000, show_default=True, help="Rows allowed per sheet.")
@click.option("--max-mb", type=int, default=200, show_default=True, help="Largest file accepted (MB).")
def import_(path: Path, dry_run: bool, as_json: bool, max_rows: int, max_mb: int) -> None:
    """Import a ledger (.xlsx, a .csv, or a directory of per-sheet CSVs); all or nothing."""
    from .db import create_engine_for, upgrade
    from .importer import ImportOptions, import_ledger
    from .reader import ReadLimits

    engine = create_engine_for(load_settings())
    upgrade(engine)
    options = ImportOptions(dry_run=dry_run, limits=ReadLimits(max_mb * 1024 * 1024, max_rows))
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=as_json,
    ) as bar:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, advance: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], advance=advance, total=total)

        report = import_ledger(engine, path, options, progress)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    sys.exit(0 if report.ok else 1)


def _print_report(report: object) -> None:
    from .report import ImportReport

    assert isinstance(report, ImportReport)
    console = Console()
    if report.issues.kept:
        table = Table(title=_("Findings"))
        for column in (N_("level"), N_("sheet"), N_("row"), N_("column"), N_("reason")):
            table.add_column(_(column))
        for i in report.issues.kept:
            level = _("error") if i.severity == "error" else _("warning")
            table.add_row(level, i.sheet or "", str(i.row or ""), i.column or "", i.message())
        console.print(table)
        if report.issues.omitted:
            console.print(_("{count} more not shown", count=report.issues.omitted))
    if report.changes:
        table = Table(title=_("Changes (dry run, nothing written)") if report.dry_run else _("Changes"))
        for column in (N_("table"), N_("rows"), N_("created"), N_("updated"), N_("unchanged")):
            table.add_column(_(column), justify="right")
        for name, c in report.changes.items():
            table.add_row(name, str(c.rows), str(c.created), str(c.updated), str(c.unchanged))
        console.print(table)
    rate = report.rows / report.seconds if report.seconds else 0.0
    if report.ok:
        done = _("dry run: nothing written") if report.dry_run else _("imported")
        console.print(
            _("{done}: {rows} rows in {seconds:.2f} s ({rate:,.0f} rows/s)", done=done, rows=report.rows,
              seconds=report.seconds, rate=rate)
        )  # fmt: skip
    else:
        console.print(
            _("import refused: {errors} errors; the database was not changed", errors=report.issues.errors)
        )


@assets.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--headers", type=click.Choice(["zh", "en", "key"]), default="zh", show_default=True)
def export(path: Path, headers: str) -> None:
    """Export the registry as a ledger (.xlsx, or a directory of CSVs for any other path)."""
    from .db import create_engine_for, upgrade
    from .exporter import export_ledger
    from .workbook import HeaderStyle

    engine = create_engine_for(load_settings())
    upgrade(engine)
    started = time.perf_counter()
    counts = export_ledger(engine, path, HeaderStyle(headers))
    summary = ", ".join(f"{name} {n}" for name, n in counts.items())
    click.echo(f"{path}: {summary} ({time.perf_counter() - started:.2f} s)")


assets.add_command(token)
