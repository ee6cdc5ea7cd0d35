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
from ..i18n import N_, _
from ..settings import load_settings, validation_problems
from .site import SIMULATED_KINDS, Site

FAULT_MODES = click.Choice(["none", "random", "all"])
log = logging.getLogger(__name__)

def _sites(ledger: Path, compounds: tuple[str, ...]) -> list[Site]:
    from .site import LedgerError, load_sites

    try:
        return load_sites(ledger, compounds or None)
    except LedgerError as exc:
        Console(stderr=True).print(_("cannot use the ledger: {reason}", reason=exc), style="red")
        sys.exit(2)


# Subcommands that live in other modules, loaded on first use (and listed only when installed).
LAZY_COMMANDS = {
    "site": "sitewatch.simulators.frontends.cli:site",  # devices behind real protocols
    "stats": "sitewatch.simulators.report_cli:stats",  # the realism report of a backfill
    "baseline": "sitewatch.simulators.report_cli:baseline",  # the obvious rules scored on a backfill
}
ANOMALIES = click.option("--anomalies/--no-anomalies", default=True, show_default=True,
                         help="Harmless anomalies and outages (gaps, blips, spurious alarms, power cuts) at "
                              "their yearly rates.")  # fmt: skip


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
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Date the ledger describes (its contracts are in force then and two years after); "
                   "default today. Same seed and date, same ledger.")  # fmt: skip
def city(compounds: int, seed: int, out: Path, headers: str, as_of: dt.datetime | None) -> None:
    """Generate a synthetic city of pre-2000 compounds and write its ledger (台账)."""
    from ..assets.workbook import HeaderStyle, write_csv_dir, write_xlsx
    from .city import generate_city, summary

    if out.suffix.lower() not in ("", ".xlsx"):
        raise click.BadParameter(_("{path}: give an .xlsx file, or a directory without extension (one CSV per sheet)", path=out), param_hint="--out")
    started = time.perf_counter()
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task(_("generating the city ledger"), total=None)
        records = generate_city(compounds, seed, as_of.date() if as_of else None)
        bar.update(task, description=_("writing {path}", path=out))
        if out.suffix.lower() == ".xlsx":
            write_xlsx(records, out, HeaderStyle(headers))
        else:
            write_csv_dir(records, out, HeaderStyle(headers))
    table = Table(title=_("Simulated city"))
    table.add_column(_("item"))
    table.add_column(_("count"), justify="right")
    for name, value in summary(records).items():
        table.add_row(name, f"{value:,}")
    Console().print(table)
    click.echo(_("ledger written to {path} in {seconds:.1f} s", path=out, seconds=time.perf_counter() - started))


_FAULT_COLUMNS = (N_("kind"), N_("fault"), N_("what happens"), N_("unit"), N_("subtle"), N_("moderate"),
                  N_("clear"), N_("per device-year"), N_("device alarm"))  # fmt: skip


@simulate.command()
def faults() -> None:
    """List the fault types the simulators inject, per device kind, with their sizes and device alarms."""
    from .faults import BANDS, FAULT_TYPES

    table = Table(title=_("Simulated fault types"))
    for column in _FAULT_COLUMNS:
        table.add_column(_(column))
    for f in FAULT_TYPES.values():
        sizes = ["–".join(f"{x:g}" for x in sorted(set(f.magnitude.range(b)))) for b in BANDS]
        alarm = "—" if f.alarm is None else _("{event}: missed {missed:.0%}, late {late:.0%}", event=f.alarm.event,
                                               missed=f.alarm.missed, late=f.alarm.late)  # fmt: skip
        table.add_row(f.kind.value, f.name, _(f.description), f.magnitude.unit, *sizes, f"{f.per_year:g}",
                      alarm)  # fmt: skip
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
@ANOMALIES
def backfill(
    ledger: Path, compounds: tuple[str, ...], days: int, start: str | None, out: Path, seed: int, faults: str,
    fault_rate: float, anomalies: bool,
) -> None:  # fmt: skip
    """Generate history as fast as possible: Parquet readings (long form), events and fault labels."""
    from .backfill import backfill as run_backfill

    sites = _sites(ledger, compounds)
    try:
        start_ms = _start_ms(start, days)
    except ValueError:
        raise click.BadParameter(_("{value}: a date must look like YYYY-MM-DD", value=start), param_hint="--start") from None
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[readings]:,} readings"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task(_("backfilling {compounds} compounds x {days} days", compounds=len(sites), days=days), total=len(sites) * days,
                            readings=0)  # fmt: skip

        def progress(steps: int, readings: int) -> None:
            bar.update(task, completed=steps, readings=readings)

        result = run_backfill(sites, start_ms, days, out, seed=seed, faults=faults, fault_rate=fault_rate,
                              anomalies=anomalies, progress=progress)  # fmt: skip
    counts: dict[tuple[str, str], int] = {}
    for label in result.labels:
        key = (label.kind.value, label.fault)
        counts[key] = counts.get(key, 0) + 1
    if counts:
        table = Table(title=_("Injected faults (ground-truth labels)"))
        table.add_column(_("kind"))
        table.add_column(_("fault"))
        table.add_column(_("count"), justify="right")
        for (kind, fault), n in sorted(counts.items()):
            table.add_row(kind, fault, str(n))
        Console().print(table)
    click.echo(_("output directory: {path}", path=out))
    click.echo(_("{readings:,} readings, {events:,} events and {labels} fault labels in {seconds:.1f} s ({rate:,.0f} readings/s)", readings=result.readings, events=result.events, labels=len(result.labels), seconds=result.seconds, rate=result.readings_per_s))  # fmt: skip
    click.echo(_("{cpu:.1f} CPU seconds: {rate:,.0f} readings per CPU second", cpu=result.cpu_seconds,
                 rate=result.readings_per_cpu_s))  # fmt: skip


@simulate.command()
@click.option("--history", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A `simulate backfill` output directory.")  # fmt: skip
@click.option("--kind", "kinds", multiple=True, required=True,
              type=click.Choice([k.value for k in SIMULATED_KINDS]),
              help="Device kind to keep (repeatable).")  # fmt: skip
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory.")
def subset(history: Path, kinds: tuple[str, ...], out: Path) -> None:
    """Copy a backfill keeping only some kinds of device (a quicker evaluation of their rules).

    Outages are copied whole. A gateway's "no data" rule sees only the devices kept.
    """
    from .backfill import subset_backfill

    if out.resolve() == history.resolve():
        raise click.BadParameter(_("the subset must go to another directory than the history"), param_hint="--out")
    kept = subset_backfill(history, out, kinds)
    click.echo(_("output directory: {path}", path=out))
    click.echo(_("kept {readings:,} readings, {events:,} events, {labels} fault labels and {devices} devices",
                 readings=kept.get("readings", 0), events=kept.get("events", 0), labels=kept.get("labels", 0),
                 devices=kept.get("devices", 0)))  # fmt: skip


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
@ANOMALIES
def run(
    ledger: Path, broker: str | None, compounds: tuple[str, ...], speed: float, duration: float | None, seed: int,
    faults: str, fault_rate: float, step_s: float, anomalies: bool,
) -> None:  # fmt: skip
    """Publish compounds in real time, each as its own site gateway (birth, will, data, events; QoS 1)."""
    from ..contract import now_ms
    from .live import LiveSite
    from .publisher import CityRunner

    overrides = {"mqtt": {"url": broker}} if broker else {}
    try:
        settings = load_settings(**overrides).mqtt
    except ValidationError as exc:
        raise click.BadParameter("; ".join(validation_problems(exc)), param_hint="--broker") from None
    sites = _sites(ledger, compounds)
    start = now_ms()
    if speed > 1 and duration is not None:
        start -= int((speed - 1) * duration * 1000)
    elif speed > 1:
        Console(stderr=True).print(_("no --duration: at speed {speed:g} simulated time runs ahead of now, and ingest refuses readings more than 300 s ahead", speed=speed), style="yellow")
    lives = [LiveSite(s, seed=seed, faults=faults, fault_rate=fault_rate, start_ms=start, anomalies=anomalies)
             for s in sites]  # fmt: skip
    runner = CityRunner(lives, settings, speed=speed, step_s=step_s, sim_start_ms=start)
    devices = sum(len(s.devices) for s in sites)
    click.echo(
        _("publishing {compounds} compounds ({devices:,} devices) to {broker} at speed {speed:g}", speed=speed, compounds=len(sites), devices=devices, broker=settings.url)
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
            console.print(_("readings {readings:,} ({rate:,.0f}/s), messages {messages:,}, acked {acked:,}, events {events:,}", readings=stats.readings, rate=rate, messages=stats.messages, acked=stats.acked, events=stats.events))  # fmt: skip
            last[0], last[1] = now, stats.readings

    try:
        stats = runner.run(duration, tick)
    except KeyboardInterrupt:
        stats = runner.stats
    finally:
        runner.close()
    click.echo(_("done: {readings:,} readings, {messages:,} messages, {events:,} events, {dropped} dropped, {disconnects} disconnects", readings=stats.readings, messages=stats.messages, events=stats.events, dropped=stats.dropped, disconnects=stats.disconnects))  # fmt: skip
