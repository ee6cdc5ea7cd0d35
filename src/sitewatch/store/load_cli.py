"""``sitewatch store``: fill the configured store (``store load DIR`` writes a backfill into it)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..i18n import _
from ..settings import StoreBackend, load_settings
from .base import InvalidPoint, StoreUnavailable


@click.group()
def store() -> None:
    """Fill the time-series store the settings point at (SITEWATCH_STORE__BACKEND)."""
    # one line per HTTP request would bury the progress bar
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


@store.command("load")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--path", type=click.Path(path_type=Path, dir_okay=False),
    help="Load into this embedded store file instead of the configured store.",
)  # fmt: skip
@click.option(
    "--batch", "batch_readings", type=click.IntRange(min=1000), show_default=True, default=None,
    help="Readings per write (default: SITEWATCH_INGEST__BATCH_READINGS).",
)  # fmt: skip
def load(directory: Path, path: Path | None, batch_readings: int | None) -> None:
    """Write a `sitewatch simulate backfill` DIRECTORY (readings and events) into the store.

    At full speed, with a progress bar. Loading the same directory again changes nothing: the
    store keeps one reading per device, metric and time, and one event per device, time and name.
    """
    from .factory import open_store
    from .loader import counts, load_backfill

    settings = load_settings()
    if path is not None:
        settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"backend": StoreBackend.EMBEDDED, "path": path})}
        )
    try:
        total_readings, total_events = counts(directory)
    except FileNotFoundError as exc:
        raise click.ClickException(
            _("{directory} holds no backfill ({error}); make one with `sitewatch simulate backfill`",
              directory=directory, error=exc)
        ) from None  # fmt: skip
    target = (
        str(settings.store_path)
        if settings.store.backend is StoreBackend.EMBEDDED
        else f"{settings.store.influx_url} ({settings.store.influx_database})"
    )
    readings_text, events_text = format(total_readings, ","), format(total_events, ",")
    click.echo(_("loading {readings} readings and {events} events into {store}", readings=readings_text,
                 events=events_text, store=target))  # fmt: skip
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(),
    )  # fmt: skip
    opened = open_store(settings)
    try:
        with Progress(*columns, transient=False) as bar:
            readings = bar.add_task(_("readings"), total=total_readings)
            events = bar.add_task(_("events"), total=total_events)

            def advance(new_readings: int, new_events: int) -> None:
                bar.advance(readings, new_readings)
                bar.advance(events, new_events)

            loaded = load_backfill(
                directory,
                opened,
                batch_readings=batch_readings or settings.ingest.batch_readings,
                progress=advance,
            )
    except StoreUnavailable as exc:
        raise click.ClickException(_("the time-series store is unavailable: {error}", error=exc)) from None
    except InvalidPoint as exc:
        raise click.ClickException(_("the store refused the backfill: {error}", error=exc)) from None
    finally:
        opened.close()
    figures = {
        "readings": format(loaded.readings, ","), "events": format(loaded.events, ","),
        "seconds": format(loaded.seconds, ".1f"), "rate": format(loaded.readings_per_s, ",.0f"),
    }  # fmt: skip
    click.echo(
        _("{readings} readings and {events} events written in {seconds} s ({rate} readings/s); "
          "a second load changes nothing", **figures)
    )  # fmt: skip
