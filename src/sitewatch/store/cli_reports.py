"""``sitewatch query aggregate | uptime | gateways``: grouped windows, uptime KPIs, gateway liveness.

Also the options every windowed query shares (``--window``, ``--tz``). The commands' bodies take the
store opener and the table/CSV writer from ``store.cli`` (imported when they run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..contract import KINDS, DeviceKind, now_ms
from ..i18n import _
from ..settings import load_settings
from .base import TAG_KEYS, ActiveQuery, ActiveTime, Aggregation, Combine, DeviceRef, GroupQuery
from .uptime import uptime_rows
from .windows import Window, windows, zone

F = TypeVar("F", bound=Callable[..., Any])

KIND_CHOICE = click.Choice([k.value for k in DeviceKind])
HIERARCHY_TAGS = ("district", "street", "community", "building")
# the counters `query gateways` shows in its table (CSV has all of them)
SHOWN_COUNTERS = ("read", "sent", "acknowledged", "replayed", "dropped", "queue_readings", "connects")


def parse_window(ctx: click.Context, param: click.Parameter, value: str | None) -> Window | None:
    """A ``--window`` option: a length dividing a day (15m, 1h) or 1d, 1w, 1mo."""
    if value is None:
        return None
    try:
        return Window.parse(value)
    except ValueError:
        raise click.BadParameter(
            _("{value} is not a window: use a length that divides a day (1m, 15m, 1h, 6h) or a calendar "
              "unit (1d, 1w, 1mo)", value=repr(value))
        ) from None  # fmt: skip


def parse_tz(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """A ``--tz`` option, by default the ``timezone`` setting."""
    name = value or load_settings().timezone
    try:
        zone(name)
    except ValueError:
        raise click.BadParameter(
            _("unknown time zone {name}: use an IANA name such as Asia/Shanghai or UTC", name=repr(name))
        ) from None
    return name


def tz_option(func: F) -> F:
    """The ``--tz`` option."""
    return click.option(
        "--tz",
        callback=parse_tz,
        help="Time zone of windows, dates and shown times (default: SITEWATCH_TIMEZONE).",
    )(func)


def _tags(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or key not in HIERARCHY_TAGS:
            raise click.BadParameter(
                _("use KEY=VALUE, KEY one of {keys}", keys=", ".join(HIERARCHY_TAGS)), param_hint="--tag"
            )
        tags[key] = val
    return tags


def _group_by(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in keys if k not in TAG_KEYS]
    if unknown:
        raise click.BadParameter(
            _("cannot group by {keys}: use {allowed}", keys=", ".join(unknown), allowed=", ".join(TAG_KEYS))
        )
    return keys


def _report_options(func: F) -> F:
    """Range, zone, device selection and output options."""
    options = [
        click.option("--since", default="1d", show_default=True, help="Start: a duration ago (1h) or a date-time."),
        click.option("--until", default="now", show_default=True, help="End (exclusive)."),
        tz_option,
        click.option("--compound", "-c", help="Only this compound."),
        click.option("--device", "-d", "devices", multiple=True, help="Only these devices (repeatable)."),
        click.option("--tag", "tags", multiple=True, callback=_tags,
                     help="Only devices with this tag, e.g. --tag building=3号楼 (repeatable)."),
        click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8, English headers) instead of a table."),
        click.option("--path", type=click.Path(path_type=Path, dir_okay=False),
                     help="Embedded store file to read (default: SITEWATCH_STORE__PATH or <data_dir>/readings.db)."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _range(since: str, until: str, tz: str) -> tuple[int, int]:
    from .cli import parse_time_ms

    now = now_ms()
    try:
        return parse_time_ms(since, now, tz), parse_time_ms(until, now, tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--metric", "-m", "metrics", multiple=True, required=True, help="Metric (repeatable).")
@click.option(
    "--kind", "-k", type=KIND_CHOICE, help="Only this device kind (default: every kind with the metric)."
)
@click.option(
    "--group-by", "-g", "group_by", default="compound", show_default=True, callback=_group_by,
    help="Comma-separated tags to group devices by: compound, building, street, district, community, kind, "
    "device ('' for all devices as one group).",
)  # fmt: skip
@click.option(
    "--window", callback=parse_window,
    help="One value per window (15m, 1h, 1d, 1w, 1mo); default: one value for the whole range.",
)  # fmt: skip
@click.option(
    "--agg", type=click.Choice([a.value for a in Aggregation]), default="mean", show_default=True,
    help="Each device's value in a window (increase: a counter's growth, resets counted as restarts from 0).",
)  # fmt: skip
@click.option(
    "--combine", type=click.Choice([c.value for c in Combine]),
    help="How a group's devices combine (default: sum for increase, count and last_minus_first; mean for "
    "mean and last; min for min; max for max).",
)  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@_report_options
def aggregate(metrics: tuple[str, ...], kind: str | None, group_by: tuple[str, ...], window: Window | None,
              agg: str, combine: str | None, limit: int | None, since: str, until: str, tz: str,
              compound: str | None, devices: tuple[str, ...], tags: dict[str, str],
              as_csv: bool, path: Path | None) -> None:  # fmt: skip
    """A metric per group of devices (compound, building, ...) and window: overviews, consumption, KPIs."""
    from .cli import _emit, _opened, format_time, format_value

    start, end = _range(since, until, tz)
    query = GroupQuery(
        metrics, start, end, group_by=group_by, kind=DeviceKind(kind) if kind else None, window=window,
        aggregation=Aggregation(agg), combine=Combine(combine) if combine else None, tz=tz, devices=devices,
        compound=compound, tags=tags, limit=limit,
    )  # fmt: skip
    with _opened(path) as (store, _where):
        rows = store.aggregate(query)
    if not rows:
        click.echo(_("no data in the selected time range"), err=True)
        return
    how = query.combiner.value
    if as_csv:
        _emit(True, [*group_by, "metric", "ts_ms", "window", f"{how}_of_{agg}", "devices"],
              [(*p.group, p.metric, p.ts_ms, format_time(p.ts_ms, iso=True, tz=tz), format_value(p.value),
                p.devices) for p in rows])  # fmt: skip
        return
    headers = [*group_by, _("metric"), _("window start"), _("{combine} of {aggregation}", combine=how,
               aggregation=agg), _("devices")]  # fmt: skip
    table = [
        (*p.group, p.metric, format_time(p.ts_ms, tz=tz), format_value(p.value), p.devices) for p in rows
    ]
    title = _("grouped by {keys} · {zone}", keys=", ".join(group_by) or "-", zone=tz)
    _emit(False, headers, table, title)


def stateful_kinds(event: str, kind: DeviceKind | None) -> list[DeviceKind]:
    """The kinds (``kind`` or all) that have ``event`` as a stateful event; BadParameter if none."""
    kinds = [kind] if kind else list(DeviceKind)
    found = [k for k in kinds if (spec := KINDS[k].events.get(event)) is not None and spec.stateful]
    if not found:
        names = sorted({e.name for k in kinds for e in KINDS[k].events.values() if e.stateful})
        raise click.BadParameter(
            _(
                "{event} is not a stateful event here; stateful events: {names}",
                event=event,
                names=", ".join(names),
            ),
            param_hint="--event",
        )
    return found


@click.command()
@click.option("--event", "-e", required=True, help="A stateful event: faulted, video_loss, lamp_failure, ...")
@click.option(
    "--kind", "-k", type=KIND_CHOICE, help="Only this device kind (default: every kind with the event)."
)
@click.option(
    "--window", callback=parse_window, help="One row per window (1h, 1d, 1w, 1mo); default: the whole range."
)
@click.option(
    "--group-by", "-g", "group_by", default="device", show_default=True, callback=_group_by,
    help="Comma-separated tags to group devices by ('' for all devices as one group).",
)  # fmt: skip
@_report_options
def uptime(event: str, kind: str | None, window: Window | None, group_by: tuple[str, ...], since: str,
           until: str, tz: str, compound: str | None, devices: tuple[str, ...], tags: dict[str, str],
           as_csv: bool, path: Path | None) -> None:  # fmt: skip
    """Time each device spent with EVENT active, and the uptime that leaves, per window and group.

    Uptime = 1 - active time / (devices x window), counting every device of the kind that the
    store holds readings of; an event raised before a window and still active counts from its start.
    """
    from .cli import _emit, _opened, format_time

    kinds = stateful_kinds(event, DeviceKind(kind) if kind else None)
    start, end = _range(since, until, tz)
    population: list[DeviceRef] = []
    active: list[ActiveTime] = []
    with _opened(path) as (store, _where):
        for k in kinds:
            population += store.devices(kind=k, compound=compound, devices=devices, tags=tags)
            active += store.active_time(
                ActiveQuery(event, start, end, window=window, tz=tz, kind=k, compound=compound, devices=devices,
                            tags=tags)
            )  # fmt: skip
    rows = uptime_rows(active, population, windows(start, end, window, tz), start, group_by)
    if not rows:
        click.echo(_("no data in the selected time range"), err=True)
        return
    if as_csv:
        _emit(True, [*group_by, "ts_ms", "window", "devices", "active_s", "uptime_percent"],
              [(*r.group, r.ts_ms, format_time(r.ts_ms, iso=True, tz=tz), r.devices, r.active_ms / 1000,
                f"{r.uptime * 100:.3f}") for r in rows])  # fmt: skip
        return
    headers = [*group_by, _("window start"), _("devices"), _("{event} active (h)", event=event), _("uptime")]
    table = [(*r.group, format_time(r.ts_ms, tz=tz), r.devices, f"{r.active_ms / 3_600_000:.2f}",
              f"{r.uptime * 100:.2f}%") for r in rows]  # fmt: skip
    _emit(False, headers, table, _("uptime: time without {event} · {zone}", event=event, zone=tz))


def _counters_line(counters: dict[str, float], names: Sequence[str]) -> str:
    from .cli import format_value

    return "  ".join(f"{n}={format_value(counters[n])}" for n in names if n in counters)


@click.command()
@click.option("--compound", "-c", help="Only this compound.")
@tz_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8, English headers) instead of a table.")
@click.option("--path", type=click.Path(path_type=Path, dir_okay=False),
              help="Embedded store file to read (default: SITEWATCH_STORE__PATH or <data_dir>/readings.db).")  # fmt: skip
def gateways(compound: str | None, tz: str, as_csv: bool, path: Path | None) -> None:
    """Site gateways: online or offline since when, their boot sequence (bdseq) and newest counters."""
    from .cli import _emit, _opened, format_time

    with _opened(path) as (store, _where):
        found = store.gateways(compound=compound)
    if not found:
        click.echo(_("no data in the selected time range"), err=True)
        return
    if as_csv:
        _emit(True, ["device", "compound", "online", "since_ms", "since", "bdseq", "counters_ms", "counters"],
              [(g.device, g.compound, str(g.online).lower(), g.since_ms, format_time(g.since_ms, iso=True, tz=tz),
                g.bdseq, g.counters_ms or "", ";".join(f"{k}={v:g}" for k, v in sorted(g.counters.items())))
               for g in found])  # fmt: skip
        return
    rows = [(g.device, g.compound, _("online") if g.online else _("offline"), format_time(g.since_ms, tz=tz),
             g.bdseq, format_time(g.counters_ms, tz=tz) if g.counters_ms else "",
             _counters_line(dict(g.counters), SHOWN_COUNTERS)) for g in found]  # fmt: skip
    headers = [_("gateway"), _("compound"), _("state"), _("since"), "bdseq", _("counters at"), _("counters")]
    online = sum(g.online for g in found)
    _emit(
        False, headers, rows, _("{online} of {total} gateways online", online=online, total=len(found))
    )
