"""``sitewatch simulate``: generate a city ledger, backfill history, publish live compounds over MQTT."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from pathlib import Path

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..cli_support import LazyGroup
from ..i18n import current_language
from ..settings import load_settings, validation_problems
from .site import Site

LANGS = click.Choice(["zh-CN", "en"], case_sensitive=False)
FAULT_MODES = click.Choice(["none", "random", "all"])
log = logging.getLogger(__name__)

MESSAGES: dict[str, tuple[str, str]] = {
    "generating": ("生成城市台账", "generating the city ledger"),
    "writing": ("写入 {path}", "writing {path}"),
    "written": ("台账已写入 {path}（{seconds:.1f} 秒）", "ledger written to {path} in {seconds:.1f} s"),
    "city_title": ("模拟城市", "Simulated city"),
    "item": ("项目", "item"),
    "count": ("数量", "count"),
    "backfill": ("回填 {compounds} 个小区 × {days} 天", "backfilling {compounds} compounds x {days} days"),
    "backfill_done": (
        "生成读数 {readings:,} 条、事件 {events:,} 条、故障标签 {labels} 条，用时 {seconds:.1f} 秒（{rate:,.0f} 条读数/秒）",
        "{readings:,} readings, {events:,} events and {labels} fault labels in {seconds:.1f} s "
        "({rate:,.0f} readings/s)",
    ),
    "files": ("输出目录：{path}", "output directory: {path}"),
    "faults_title": ("注入的故障（真值标签）", "Injected faults (ground-truth labels)"),
    "fault": ("故障类型", "fault"),
    "kind": ("设备类型", "kind"),
    "running": (
        "以 {speed:g} 倍速发布 {compounds} 个小区（{devices:,} 台设备）到 {broker}",
        "publishing {compounds} compounds ({devices:,} devices) to {broker} at speed {speed:g}",
    ),
    "run_status": (
        "读数 {readings:,}（{rate:,.0f}/秒），消息 {messages:,}，已确认 {acked:,}，事件 {events:,}",
        "readings {readings:,} ({rate:,.0f}/s), messages {messages:,}, acked {acked:,}, events {events:,}",
    ),
    "run_done": (
        "结束：读数 {readings:,}、消息 {messages:,}、事件 {events:,}、丢弃 {dropped}、断线 {disconnects}",
        "done: {readings:,} readings, {messages:,} messages, {events:,} events, {dropped} dropped, "
        "{disconnects} disconnects",
    ),
    "ahead": (
        "未指定 --duration：{speed:g} 倍速下模拟时间将超前于现在，超前 300 秒以上的读数会被入库拒绝",
        "no --duration: at speed {speed:g} simulated time runs ahead of now, and ingest refuses readings "
        "more than 300 s ahead",
    ),
    "bad_out": (
        "{path}：请使用 .xlsx 文件，或不带扩展名的目录（每个工作表一个 CSV）",
        "{path}: give an .xlsx file, or a directory without extension (one CSV per sheet)",
    ),
    "faults_catalogue": ("模拟故障类型", "Simulated fault types"),
    "col_kind": ("设备类型", "kind"),
    "col_fault": ("故障", "fault"),
    "col_what": ("说明", "what happens"),
    "col_hours": ("持续(小时)", "duration (h)"),
    "col_per_year": ("每台每年", "per device-year"),
    "col_event": ("事件", "event"),
    "bad_start": ("{value}：日期格式应为 YYYY-MM-DD", "{value}: a date must look like YYYY-MM-DD"),
    "ledger_error": ("无法使用台账：{reason}", "cannot use the ledger: {reason}"),
}


def _lang(lang: str | None) -> str:
    return lang or current_language()


def msg(key: str, lang: str, **params: object) -> str:
    """A user-facing message in zh-CN or English."""
    zh, en = MESSAGES[key]
    return (zh if lang.lower().startswith("zh") else en).format(**params)


def _sites(ledger: Path, compounds: tuple[str, ...], lang: str) -> list[Site]:
    from .site import LedgerError, load_sites

    try:
        return load_sites(ledger, compounds or None)
    except LedgerError as exc:
        Console(stderr=True).print(f"[red]{msg('ledger_error', lang, reason=exc)}[/red]")
        sys.exit(2)


# Subcommands that live in other modules, loaded on first use (and listed only when installed).
LAZY_COMMANDS = {"site": "sitewatch.simulators.frontends.cli:site"}  # devices behind real protocols


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS)
def simulate() -> None:
    """Simulated devices: a synthetic city ledger, history backfill, and live compounds over MQTT."""


@simulate.command()
@click.option("--compounds", type=click.IntRange(1, 20_000), default=267, show_default=True,
              help="Compounds in the city (267 gives about 1,850 buildings and 57,000 households).")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same city.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Ledger to write: .xlsx, or a directory of per-sheet CSV files.")  # fmt: skip
@click.option("--headers", type=click.Choice(["zh", "en", "key"]), default="zh", show_default=True,
              help="Column headers: Chinese, English or column keys.")  # fmt: skip
@click.option(
    "--lang", type=LANGS, help="Language of the output (default: SITEWATCH_LANGUAGE or sitewatch --lang)."
)
def city(compounds: int, seed: int, out: Path, headers: str, lang: str | None) -> None:
    """Generate a synthetic city of pre-2000 compounds and write its ledger (台账)."""
    from ..assets.workbook import HeaderStyle, write_csv_dir, write_xlsx
    from .city import generate_city, summary

    language = _lang(lang)
    if out.suffix.lower() not in ("", ".xlsx"):
        raise click.BadParameter(msg("bad_out", language, path=out), param_hint="--out")
    started = time.perf_counter()
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task(msg("generating", language), total=None)
        records = generate_city(compounds, seed)
        bar.update(task, description=msg("writing", language, path=out))
        if out.suffix.lower() == ".xlsx":
            write_xlsx(records, out, HeaderStyle(headers))
        else:
            write_csv_dir(records, out, HeaderStyle(headers))
    table = Table(title=msg("city_title", language))
    table.add_column(msg("item", language))
    table.add_column(msg("count", language), justify="right")
    for name, value in summary(records).items():
        table.add_row(name, f"{value:,}")
    Console().print(table)
    click.echo(msg("written", language, path=out, seconds=time.perf_counter() - started))


@simulate.command()
@click.option(
    "--lang", type=LANGS, help="Language of the output (default: SITEWATCH_LANGUAGE or sitewatch --lang)."
)
def faults(lang: str | None) -> None:
    """List the fault types the simulators inject, per device kind, with their labels' events."""
    from .faults import FAULT_TYPES

    language = _lang(lang)
    zh = language.lower().startswith("zh")
    table = Table(title=msg("faults_catalogue", language))
    for col in ("kind", "fault", "what", "hours", "per_year", "event"):
        table.add_column(msg(f"col_{col}", language))
    for f in FAULT_TYPES.values():
        table.add_row(f.kind.value, f.name, f.description_zh if zh else f.description,
                      f"{f.hours[0]:g}–{f.hours[1]:g}", f"{f.per_year:g}", f.event or "—")  # fmt: skip
    Console().print(table)


def _start_ms(start: str | None, days: int) -> int:
    """Backfill start: the given local date, else midnight (local) ``days`` days before today."""
    tz = dt.timezone(dt.timedelta(hours=8))
    day = dt.date.fromisoformat(start) if start else dt.datetime.now(tz).date() - dt.timedelta(days=days)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


@simulate.command()
@click.option(
    "--ledger", type=click.Path(exists=True, path_type=Path), required=True, help="Ledger of the city."
)
@click.option(
    "--compound", "compounds", multiple=True, help="Compound code to simulate (repeatable; default: all)."
)
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="Days of history.")
@click.option("--start", help="First local day (YYYY-MM-DD, UTC+8); default: so that history ends today.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same history.")
@click.option("--faults", type=FAULT_MODES, default="random", show_default=True,
              help="none; random (drawn at yearly rates); all (random plus every fault type at least once "
                   "per compound).")  # fmt: skip
@click.option("--fault-rate", type=click.FloatRange(0, 1e6), default=1.0, show_default=True,
              help="Multiplier of the yearly fault rates.")  # fmt: skip
@click.option(
    "--lang", type=LANGS, help="Language of the output (default: SITEWATCH_LANGUAGE or sitewatch --lang)."
)
def backfill(
    ledger: Path, compounds: tuple[str, ...], days: int, start: str | None, out: Path, seed: int, faults: str,
    fault_rate: float, lang: str | None,
) -> None:  # fmt: skip
    """Generate history as fast as possible: Parquet readings (long form), events and fault labels."""
    from .backfill import backfill as run_backfill

    language = _lang(lang)
    sites = _sites(ledger, compounds, language)
    try:
        start_ms = _start_ms(start, days)
    except ValueError:
        raise click.BadParameter(msg("bad_start", language, value=start), param_hint="--start") from None
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[readings]:,} readings"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task(msg("backfill", language, compounds=len(sites), days=days), total=len(sites) * days,
                            readings=0)  # fmt: skip

        def progress(steps: int, readings: int) -> None:
            bar.update(task, completed=steps, readings=readings)

        result = run_backfill(sites, start_ms, days, out, seed=seed, faults=faults, fault_rate=fault_rate,
                              progress=progress)  # fmt: skip
    counts: dict[tuple[str, str], int] = {}
    for label in result.labels:
        key = (label.kind.value, label.fault)
        counts[key] = counts.get(key, 0) + 1
    if counts:
        table = Table(title=msg("faults_title", language))
        table.add_column(msg("kind", language))
        table.add_column(msg("fault", language))
        table.add_column(msg("count", language), justify="right")
        for (kind, fault), n in sorted(counts.items()):
            table.add_row(kind, fault, str(n))
        Console().print(table)
    click.echo(msg("files", language, path=out))
    click.echo(msg("backfill_done", language, readings=result.readings, events=result.events,
                   labels=len(result.labels), seconds=result.seconds, rate=result.readings_per_s))  # fmt: skip


@simulate.command()
@click.option(
    "--ledger", type=click.Path(exists=True, path_type=Path), required=True, help="Ledger of the city."
)
@click.option("--broker", help="Broker URL, mqtt://host:port (default: SITEWATCH_MQTT__URL).")
@click.option(
    "--compound", "compounds", multiple=True, help="Compound code to simulate (repeatable; default: all)."
)
@click.option("--speed", type=click.FloatRange(0.001, 10_000), default=1.0, show_default=True,
              help="Simulated seconds per wall-clock second. Above 1 with --duration, simulated time starts "
                   "in the past and ends at the present, so no timestamp lies in the future.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(0.1, None), help="Stop after this many wall-clock seconds.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--faults",
    type=FAULT_MODES,
    default="random",
    show_default=True,
    help="none; random (drawn at yearly rates); all (every fault type once in the first day).",
)
@click.option("--fault-rate", type=click.FloatRange(0, 1e6), default=1.0, show_default=True,
              help="Multiplier of the yearly fault rates.")  # fmt: skip
@click.option("--step", "step_s", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Wall-clock seconds between two publications of one compound.")  # fmt: skip
@click.option(
    "--lang", type=LANGS, help="Language of the output (default: SITEWATCH_LANGUAGE or sitewatch --lang)."
)
def run(
    ledger: Path, broker: str | None, compounds: tuple[str, ...], speed: float, duration: float | None, seed: int,
    faults: str, fault_rate: float, step_s: float, lang: str | None,
) -> None:  # fmt: skip
    """Publish compounds in real time, each as its own site gateway (birth, will, data, events; QoS 1)."""
    from ..contract import now_ms
    from .live import LiveSite
    from .publisher import CityRunner

    language = _lang(lang)
    overrides = {"mqtt": {"url": broker}} if broker else {}
    try:
        settings = load_settings(**overrides).mqtt
    except ValidationError as exc:
        raise click.BadParameter("; ".join(validation_problems(exc)), param_hint="--broker") from None
    sites = _sites(ledger, compounds, language)
    start = now_ms()
    if speed > 1 and duration is not None:
        start -= int((speed - 1) * duration * 1000)
    elif speed > 1:
        Console(stderr=True).print(f"[yellow]{msg('ahead', language, speed=speed)}[/yellow]")
    lives = [LiveSite(s, seed=seed, faults=faults, fault_rate=fault_rate, start_ms=start) for s in sites]
    runner = CityRunner(lives, settings, speed=speed, step_s=step_s, sim_start_ms=start)
    devices = sum(len(s.devices) for s in sites)
    click.echo(
        msg("running", language, speed=speed, compounds=len(sites), devices=devices, broker=settings.url)
    )
    runner.connect()
    console = Console(stderr=True)
    last = [time.monotonic(), 0]

    def tick(stats: object) -> None:
        from .publisher import PublishStats

        assert isinstance(stats, PublishStats)
        now = time.monotonic()
        if now - last[0] >= 10.0:
            rate = (stats.readings - last[1]) / (now - last[0])
            console.print(msg("run_status", language, readings=stats.readings, rate=rate, messages=stats.messages,
                              acked=stats.acked, events=stats.events))  # fmt: skip
            last[0], last[1] = now, stats.readings

    try:
        stats = runner.run(duration, tick)
    except KeyboardInterrupt:
        stats = runner.stats
    finally:
        runner.close()
    click.echo(msg("run_done", language, readings=stats.readings, messages=stats.messages, events=stats.events,
                   dropped=stats.dropped, disconnects=stats.disconnects))  # fmt: skip
