"""``sitewatch analytics run``: one worker of the live analytics service."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import click
from pydantic import ValidationError

from ..i18n import _
from ..settings import Settings, load_settings, validation_problems
from ..store import Store, open_store
from .checkpoint import CheckpointError
from .compounds import (
    CompoundPlace,
    DevicePlace,
    devices_from_ledger,
    devices_from_registry,
    from_ledger,
    from_registry,
)
from .partition import Partition
from .processor import EngineFactory
from .service import AnalyticsService

log = logging.getLogger(__name__)


def engine_factory(settings: Settings, places: Mapping[str, CompoundPlace]) -> EngineFactory:
    """Build (or restore) the rules engine over the compounds in ``places``."""
    from .engine import Engine
    from .rules import load_rules

    rules = load_rules(settings.analytics.rules_file)
    sites = engine_sites(settings, places)

    def make(blob: bytes | None) -> Engine:
        return Engine.restore(blob, rules, sites) if blob is not None else Engine(rules, sites)

    return make


def engine_sites(settings: Settings, places: Mapping[str, CompoundPlace]) -> dict[str, Any]:
    """The engine's sites (location and time zone) of the compounds in ``places``."""
    from .engine import Site

    return {c: Site(p.latitude, p.longitude, settings.timezone) for c, p in places.items()}


def write_stats(service: AnalyticsService, path: Path) -> None:
    """Write the counters as JSON, atomically."""
    tmp = path.with_suffix(".tmp")
    scored = service.scorer.stats.snapshot() if service.scorer is not None else {}
    tmp.write_text(json.dumps(service.stats.snapshot() | scored | {"pid": os.getpid()}))
    tmp.replace(path)


@click.command("run")
@click.option("--partition", "partition_spec", default="1/1", show_default=True,
              help="This worker's share of the compounds, K/N: it handles the compounds whose hash falls "
                   "in bucket K of N and subscribes only to their topics.")  # fmt: skip
@click.option("--client-id", help="MQTT client id (default: <mqtt.client_id>-analytics, with -KofN "
                                  "appended for a partition). Also names the checkpoint file.")  # fmt: skip
@click.option("--ledger", type=click.Path(exists=True, path_type=Path),
              help="Read the compounds (codes, locations) from this ledger instead of the asset registry.")
@click.option("--stats-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the counters as JSON to this file every --stats-interval (for scripts).")
@click.option("--stats-interval", type=click.FloatRange(0.05, 3600), default=1.0, show_default=True,
              help="Seconds between stats-file writes.")  # fmt: skip
@click.option("--log-interval", type=click.FloatRange(0.1, 86400), default=10.0, show_default=True,
              help="Seconds between log lines.")  # fmt: skip
def run(
    partition_spec: str, client_id: str | None, ledger: Path | None, stats_file: Path | None,
    stats_interval: float, log_interval: float,
) -> None:  # fmt: skip
    """Run the live analytics service until SIGINT/SIGTERM: readings and events in, findings out.

    Settings: SITEWATCH_MQTT__URL, SITEWATCH_ANALYTICS__* (docs/analytics-service.md).
    """
    try:
        settings = load_settings()
        partition = Partition.parse(partition_spec)
    except ValidationError as exc:
        raise click.ClickException(_("invalid settings: {reason}", reason="; ".join(validation_problems(exc)))) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--partition") from None
    try:
        places: dict[str, CompoundPlace] = from_ledger(ledger) if ledger else from_registry(settings)
    except Exception as exc:  # a registry that cannot be read, a ledger without compounds
        raise click.ClickException(_("cannot read the compound list: {reason}", reason=exc)) from None
    if ledger is not None:
        settings = settings.model_copy(
            update={"analytics": settings.analytics.model_copy(update={"sites_refresh_s": 0.0})}
        )

    holder: list[AnalyticsService] = []
    devices: dict[str, DevicePlace] = {}
    try:  # buildings and meter scopes, for the detectors the scorer runs on the store
        devices.update(devices_from_ledger(ledger) if ledger else devices_from_registry(settings))
    except Exception as exc:  # the detectors then compare household meters with their own nights only
        log.warning("cannot read the devices' buildings and meter scopes (%s); the detectors go without", exc)

    def compounds() -> list[str]:
        if ledger is None and holder:  # a re-read: new compounds get their sites in the running engine
            fresh = {c: p for c, p in from_registry(settings).items() if c not in places}
            places.update(fresh)
            getattr(holder[0].engine, "sites", {}).update(engine_sites(settings, fresh))
            if fresh:
                devices.update(devices_from_registry(settings))
        return list(places)

    def store() -> Store:
        return open_store(settings, create=False)  # FileNotFoundError until ingest made the file

    try:
        service = AnalyticsService(
            settings, engine_factory(settings, places), compounds, partition=partition, client_id=client_id,
            log_interval_s=log_interval, open_store=store, places=lambda: devices, score_in_child=True,
        )  # fmt: skip
        holder.append(service)
    except CheckpointError as exc:
        raise click.ClickException(_("cannot restore the analytics state: {reason}", reason=exc)) from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(_("cannot start analytics: {reason}", reason=exc)) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if stats_file is not None:
        path = stats_file

        def keep_writing() -> None:
            while not stop.wait(stats_interval):
                write_stats(service, path)

        threading.Thread(target=keep_writing, name="analytics-stats", daemon=True).start()
    try:
        service.run(stop)
    finally:
        if stats_file is not None:
            write_stats(service, stats_file)
    if service.failed.is_set():
        raise click.ClickException(_("analytics stopped after an internal error (see the log)"))
