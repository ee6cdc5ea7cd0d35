"""``sitewatch query``: read the time-series store (embedded file or InfluxDB) from the terminal."""

from __future__ import annotations

import csv
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from ..contract import KINDS, DeviceKind, Severity, metric_spec, now_ms
from ..i18n import N_, _
from ..settings import StoreBackend, load_settings
from .base import Aggregation, EventQuery, SeriesQuery, Store, StoreUnavailable
from .cli_reports import aggregate, gateways, parse_window, tz_option, uptime
from .windows import Window, zone

F = TypeVar("F", bound=Callable[..., Any])

KIND_CHOICE = click.Choice([k.value for k in DeviceKind])

# column key (also the CSV header) -> its label in tables (a catalog message)
HEADERS: dict[str, str] = {
    "device": N_("device"),
    "kind": N_("kind"),
    "compound": N_("compound"),
    "metric": N_("metric"),
    "unit": N_("unit"),
    "time": N_("time"),
    "window": N_("window start"),
    "value": N_("value"),
    "last_seen": N_("last seen"),
    "values": N_("latest values"),
    "event": N_("event"),
    "description": N_("description"),
    "active": N_("state"),
    "attrs": N_("attributes"),
    "readings": N_("readings"),
    "series": N_("series"),
}


def kind_label(kind: DeviceKind) -> str:
    """A kind's name for people, in the current language."""
    return _(KINDS[kind].label)


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    """Milliseconds of a duration such as ``90s``, ``5m``, ``1h30m``, ``2d`` or ``500ms``."""
    value = text.strip().lower()
    if not value or _DURATION_RE.sub("", value):
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 1h30m, 2d)")
    total = sum(float(n) * _UNIT_MS[u] for n, u in _DURATION_RE.findall(value))
    if total <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return int(total)


def parse_time_ms(text: str, now: int, tz: str | None = None) -> int:
    """A time: ``now``, a duration ago (``1h``) or an ISO 8601 date-time (without an offset: in
    zone ``tz``, or the machine's local time)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return now - parse_duration_ms(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration ago (1h, 2d) nor a date-time (2026-05-01T08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz)) if tz else moment.astimezone()
    return int(moment.timestamp() * 1000)


def format_time(ts_ms: int, *, iso: bool = False, tz: str | None = None) -> str:
    """A timestamp in zone ``tz`` (default: the machine's): ISO 8601 with offset, or short for tables."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(zone(tz) if tz else None)
    if iso:
        return moment.isoformat(timespec="milliseconds")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{ts_ms % 1000:03d}" if ts_ms % 1000 else "")


def format_value(value: float) -> str:
    """A number without a needless fraction."""
    return f"{value:.15g}"


def _common(func: F) -> F:
    func = click.option(
        "--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8, English headers) instead of a table."
    )(func)
    func = click.option(
        "--path", type=click.Path(path_type=Path, dir_okay=False),
        help="Embedded store file to read (default: SITEWATCH_STORE__PATH or <data_dir>/readings.db).",
    )(func)  # fmt: skip
    return func


@contextmanager
def _opened(path: Path | None) -> Iterator[tuple[Store, str]]:
    settings = load_settings()
    if path is not None:
        settings = settings.model_copy(
            update={
                "store": settings.store.model_copy(update={"backend": StoreBackend.EMBEDDED, "path": path})
            }
        )
    if settings.store.backend is StoreBackend.EMBEDDED:
        where = str(settings.store_path)
    else:
        where = f"{settings.store.influx_url} ({settings.store.influx_database})"
    from .factory import open_store

    try:
        if settings.store.backend is StoreBackend.INFLUXDB:
            from .influx_store import InfluxStore

            # a person is waiting: one retry, not the writer's patient backoff
            store: Store = InfluxStore.from_settings(settings.store, create_database=False, retries=1)
        else:
            store = open_store(settings, create=False)
    except FileNotFoundError:
        raise click.ClickException(_("no data in {path}: run `sitewatch demo` first (or point --path at a store file)", path=where)) from None
    except StoreUnavailable as exc:
        raise click.ClickException(_("the time-series store is unavailable: {error}", error=exc)) from None
    try:
        yield store, where
    except StoreUnavailable as exc:
        raise click.ClickException(_("the time-series store is unavailable: {error}", error=exc)) from None
    finally:
        store.close()


def _emit(as_csv: bool, headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> None:
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return
    table = Table(title=title or None)
    for key in headers:
        table.add_column(
            _(HEADERS[key]) if key in HEADERS else key, justify="right" if key in ("value", "readings") else "left"
        )
    for row in rows:
        table.add_row(*(str(c) for c in row))
    Console().print(table)


@click.group()
def query() -> None:
    """Read the time-series store: a device's series, latest values, events, stored series.

    Reads the store the settings point at (SITEWATCH_STORE__BACKEND: embedded file or InfluxDB);
    --path reads another embedded file. Times: `now`, a duration ago (1h, 30m, 2d) or ISO 8601.
    """
    # one line per HTTP request would bury the answer
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


@query.command()
@click.argument("device")
@click.option("--metric", "-m", "metrics", multiple=True, help="Metric to show (repeatable; default: all).")
@click.option("--since", default="1h", show_default=True, help="Start: a duration ago (1h) or a date-time.")
@click.option(
    "--until", default="now", show_default=True, help="End (exclusive): `now`, a duration ago or a date-time."
)
@click.option(
    "--window", callback=parse_window,
    help="One value per window: a length dividing a day (5m, 1h) from local midnight, or 1d, 1w, 1mo.",
)  # fmt: skip
@click.option(
    "--agg",
    type=click.Choice([a.value for a in Aggregation]),
    default="mean",
    show_default=True,
    help="How a window is summarised (increase: a counter's growth, resets counted as restarts from 0).",
)
@tz_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Table rows shown (CSV prints all).",
)
@_common
def series(device: str, metrics: tuple[str, ...], since: str, until: str, window: Window | None, agg: str,
           tz: str, limit: int, as_csv: bool, path: Path | None) -> None:  # fmt: skip
    """Readings of one DEVICE in a time range, raw or aggregated by window."""
    now = now_ms()
    try:
        start, end = parse_time_ms(since, now, tz), parse_time_ms(until, now, tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with _opened(path) as (store, where):
        found = store.latest(devices=[device])
        if not found:
            raise click.ClickException(_("no data for device {device} in {store}", device=device, store=where))
        info = found[0]
        for metric in metrics:
            if metric not in info.values:
                raise click.ClickException(
                    _("device {device} has no metric {metric} (it has: {known})", device=device, metric=metric, known=", ".join(sorted(info.values)))
                )
        wanted = tuple(dict.fromkeys(metrics)) or tuple(sorted(info.values))
        points = store.query(SeriesQuery(info.kind, wanted, start, end, devices=(device,), window=window,
                                         aggregation=Aggregation(agg), tz=tz))  # fmt: skip
    if not points:
        click.echo(_("no data in the selected time range"), err=True)
        return
    time_key = "time" if window is None else "window"
    value_key = "value" if window is None else agg
    if as_csv:
        _emit(True, ["device", "metric", "ts_ms", time_key, value_key],
              [(p.device, p.metric, p.ts_ms, format_time(p.ts_ms, iso=True, tz=tz), format_value(p.value)) for p in points])  # fmt: skip
        return
    shown = points[-limit:]
    units = {m: (s.unit if (s := metric_spec(info.kind, m)) else "") for m in wanted}
    rows = [(p.metric, format_time(p.ts_ms, tz=tz), format_value(p.value), units[p.metric]) for p in shown]
    title = f"{device} · {kind_label(info.kind)} · {info.compound}" + (f" · {agg} / {window} · {tz}" if window else "")
    _emit(False, ["metric", time_key, "value", "unit"], rows, title)
    if len(shown) < len(points):
        click.echo(_("showing the last {shown} of {total} rows (use --limit or --csv for more)", shown=len(shown), total=len(points)), err=True)


@query.command()
@click.option("--compound", "-c", help="Only this compound.")
@click.option("--kind", "-k", type=KIND_CHOICE, help="Only this device kind.")
@click.option("--device", "-d", "devices", multiple=True, help="Only these devices (repeatable).")
@_common
def latest(compound: str | None, kind: str | None, devices: tuple[str, ...], as_csv: bool,
           path: Path | None) -> None:  # fmt: skip
    """Latest value of every metric of each device, and when it was last heard."""
    with _opened(path) as (store, _where):
        found = store.latest(compound=compound, devices=devices, kind=DeviceKind(kind) if kind else None)
    if not found:
        click.echo(_("no data in the selected time range"), err=True)
        return
    if as_csv:
        _emit(True, ["device", "kind", "compound", "last_seen_ms", "last_seen", "metric", "value"],
              [(x.device, x.kind.value, x.compound, x.last_seen_ms, format_time(x.last_seen_ms, iso=True), m, format_value(v))
               for x in found for m, v in x.values.items()])  # fmt: skip
        return
    rows = []
    for x in found:
        values = "  ".join(
            f"{m}={format_value(v)}{(' ' + s.unit) if (s := metric_spec(x.kind, m)) and s.unit else ''}"
            for m, v in x.values.items()
        )
        rows.append((x.device, kind_label(x.kind), x.compound, format_time(x.last_seen_ms), values))
    _emit(False, ["device", "kind", "compound", "last_seen", "values"], rows)


@query.command("series-list")
@click.option("--compound", "-c", help="Only this compound.")
@click.option("--kind", "-k", type=KIND_CHOICE, help="Only this device kind.")
@_common
def series_list(
    compound: str | None, kind: str | None, as_csv: bool, path: Path | None
) -> None:
    """Every stored series (device and metric)."""
    with _opened(path) as (store, _where):
        found = store.series(compound=compound, kind=DeviceKind(kind) if kind else None)
    if not found:
        click.echo(_("no data in the selected time range"), err=True)
        return
    if as_csv:
        _emit(
            True,
            ["compound", "device", "kind", "metric"],
            [(s.compound, s.device, s.kind.value, s.metric) for s in found],
        )
        return
    rows = []
    for s in found:
        spec = metric_spec(s.kind, s.metric)
        description = _(spec.description) if spec else ""
        rows.append(
            (s.compound, s.device, kind_label(s.kind), s.metric, spec.unit if spec else "", description)
        )
    _emit(False, ["compound", "device", "kind", "metric", "unit", "description"], rows)


@query.command()
@click.option("--since", default="1d", show_default=True, help="Start: a duration ago (1h) or a date-time.")
@click.option("--until", default="now", show_default=True, help="End (exclusive).")
@click.option("--compound", "-c", help="Only this compound.")
@click.option("--kind", "-k", type=KIND_CHOICE, help="Only this device kind.")
@click.option("--device", "-d", "devices", multiple=True, help="Only these devices (repeatable).")
@click.option("--event", "-e", "names", multiple=True, help="Only this event (repeatable), e.g. faulted.")
@click.option(
    "--severity", "severities", multiple=True, type=click.Choice([s.value for s in Severity]),
    help="Only events of this severity (repeatable).",
)  # fmt: skip
@click.option(
    "--active", is_flag=True,
    help="Only stateful events still active at --until (raised, not cleared), whenever they were raised.",
)  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@tz_option
@_common
def events(since: str, until: str, compound: str | None, kind: str | None, devices: tuple[str, ...],
           names: tuple[str, ...], severities: tuple[str, ...], active: bool, limit: int | None, tz: str,
           as_csv: bool, path: Path | None) -> None:  # fmt: skip
    """Device events in a time range, oldest first (or those still active)."""
    now = now_ms()
    try:
        start, end = parse_time_ms(since, now, tz), parse_time_ms(until, now, tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    query_ = EventQuery(
        0 if active else start, end, kind=DeviceKind(kind) if kind else None, compound=compound,
        devices=devices, names=names, severities=tuple(Severity(s) for s in severities),
    )  # fmt: skip
    with _opened(path) as (store, _where):
        if active:  # each device's newest state of each event, kept when it is a raise
            raised = [e for e in store.latest_events(query_) if e.event.active]
            found = sorted(raised, key=lambda e: (e.event.ts_ms, e.event.device, e.event.name))[:limit]
        else:
            found = list(store.scan_events(replace(query_, limit=limit)))
    if not found:
        click.echo(_("no data in the selected time range"), err=True)
        return
    if as_csv:
        _emit(True, ["ts_ms", "time", "device", "kind", "compound", "event", "active", "attrs"],
              [(s.event.ts_ms, format_time(s.event.ts_ms, iso=True, tz=tz), s.event.device, s.event.kind.value, s.compound,
                s.event.name, "" if s.event.active is None else str(s.event.active).lower(),
                ";".join(f"{k}={v}" for k, v in s.event.attrs.items())) for s in found])  # fmt: skip
        return
    rows = []
    for s in found:
        e = s.event
        spec = KINDS[e.kind].events.get(e.name)
        description = _(spec.description) if spec else ""
        state = "" if e.active is None else (_("raised") if e.active else _("cleared"))
        attrs = " ".join(f"{k}={v}" for k, v in e.attrs.items())
        rows.append((format_time(e.ts_ms, tz=tz), e.device, s.compound, e.name, description, state, attrs))
    _emit(False, ["time", "device", "compound", "event", "description", "active", "attrs"], rows)


@query.command()
@click.option("--compound", "-c", help="Only this compound.")
@_common
def count(compound: str | None, as_csv: bool, path: Path | None) -> None:
    """Number of stored readings (metric values)."""
    with _opened(path) as (store, where):
        total = store.count_readings(compound=compound)
    if as_csv:
        _emit(True, ["readings"], [(total,)])
    else:
        click.echo(_("{count} readings in {store}", count=total, store=where + (f" / {compound}" if compound else "")))


for _command in (aggregate, uptime, gateways):
    query.add_command(_command)
