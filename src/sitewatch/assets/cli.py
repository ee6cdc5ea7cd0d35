"""``sitewatch assets``: migrate, import and export ledgers, create API tokens, serve the REST API."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..i18n import current_language
from ..settings import load_settings

LANGS = click.Choice(["zh-CN", "en"], case_sensitive=False)


def _lang(lang: str | None) -> str:
    return lang or current_language()


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
@click.option(
    "--lang", type=LANGS, help="Language of the report (default: SITEWATCH_LANGUAGE or sitewatch --lang)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--max-rows", type=int, default=500_000, show_default=True, help="Rows allowed per sheet.")
@click.option("--max-mb", type=int, default=200, show_default=True, help="Largest file accepted (MB).")
def import_(path: Path, dry_run: bool, lang: str | None, as_json: bool, max_rows: int, max_mb: int) -> None:
    """Import a ledger (.xlsx, a .csv, or a directory of per-sheet CSVs); all or nothing."""
    from .db import create_engine_for, upgrade
    from .importer import ImportOptions, import_ledger
    from .reader import ReadLimits

    language = _lang(lang)
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
        click.echo(json.dumps(report.as_dict(language), ensure_ascii=False, indent=2))
    else:
        _print_report(report, language)
    sys.exit(0 if report.ok else 1)


def _print_report(report: object, lang: str) -> None:
    from .report import ImportReport

    assert isinstance(report, ImportReport)
    zh = lang.lower().startswith("zh")
    console = Console()
    if report.issues.kept:
        table = Table(title="问题" if zh else "Findings")
        for col in (
            ("级别", "工作表", "行", "列", "原因") if zh else ("level", "sheet", "row", "column", "reason")
        ):
            table.add_column(col)
        for i in report.issues.kept:
            level = ("错误" if i.severity == "error" else "警告") if zh else i.severity.value
            table.add_row(level, i.sheet or "", str(i.row or ""), i.column or "", i.message(lang))
        console.print(table)
        if report.issues.omitted:
            console.print(
                f"另有 {report.issues.omitted} 条未列出" if zh else f"{report.issues.omitted} more not shown"
            )
    if report.changes:
        table = Table(title="变更（试运行，未写入）" if zh and report.dry_run else "变更" if zh else
                      "Changes (dry run, nothing written)" if report.dry_run else "Changes")  # fmt: skip
        for col in (
            ("表", "行数", "新增", "更新", "未变")
            if zh
            else ("table", "rows", "created", "updated", "unchanged")
        ):
            table.add_column(col, justify="right")
        for name, c in report.changes.items():
            table.add_row(name, str(c.rows), str(c.created), str(c.updated), str(c.unchanged))
        console.print(table)
    rate = report.rows / report.seconds if report.seconds else 0.0
    if report.ok:
        done = (
            ("试运行完成，未写入" if report.dry_run else "导入完成")
            if zh
            else ("dry run: nothing written" if report.dry_run else "imported")
        )
        console.print(f"{done}: {report.rows} 行 / {report.seconds:.2f} 秒 ({rate:,.0f} 行/秒)" if zh else
                      f"{done}: {report.rows} rows in {report.seconds:.2f} s ({rate:,.0f} rows/s)")  # fmt: skip
    else:
        console.print(
            f"导入被拒绝：{report.issues.errors} 个错误，数据库未作任何修改" if zh
            else f"import refused: {report.issues.errors} errors; the database was not changed"
        )  # fmt: skip


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


@assets.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(["admin", "bureau", "property_manager", "crew"]), required=True)
@click.option("--org", help="Organisation name (required for property_manager and crew).")
@click.option("--label", help="What the token is for.")
def token_create(role: str, org: str | None, label: str | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from .db import create_engine_for, transaction, upgrade
    from .models import Role
    from .tokens import TokenError, create_token

    engine = create_engine_for(load_settings())
    upgrade(engine)
    try:
        with transaction(engine) as session:
            secret, row = create_token(session, Role(role), org, label)
            token_id = row.id
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(secret)
    click.echo(f"token {token_id} ({role}{', ' + org if org else ''}): shown once, store it now", err=True)


@assets.command()
@click.option("--host", help="Listen address (default: SITEWATCH_WEB__HOST).")
@click.option("--port", type=int, help="Port (default: SITEWATCH_WEB__PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the registry's REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from .api.app import create_app
    from .db import create_engine_for, upgrade

    settings = load_settings()
    upgrade(create_engine_for(settings))
    uvicorn.run(create_app(settings), host=host or settings.web.host, port=port or settings.web.port)
