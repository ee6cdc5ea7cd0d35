"""``sitewatch ingest``: run the ingest service, watch the dead letters."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click
from pydantic import ValidationError

from ..i18n import _
from ..settings import Settings, load_settings, validation_problems
from .service import IngestService
from .stats import latency_summary

log = logging.getLogger(__name__)


def build_service(settings: Settings, client_id: str | None) -> IngestService:
    """Open the configured store and registry client and wire the service."""
    from ..store import open_store
    from .registry import RegistryClient

    registry = None
    if settings.ingest.registry_url:
        token = settings.ingest.registry_token
        registry = RegistryClient(
            settings.ingest.registry_url,
            token.get_secret_value() if token else None,
            ttl_s=settings.ingest.registry_cache_s,
        )
    return IngestService(settings, open_store(settings), client_id=client_id, registry=registry)


# A worker allocates millions of short-lived objects without cycles (decoded samples, batches,
# lines) that reference counting frees at once; at the default threshold (700 allocations) the
# cyclic collector runs every few samples and rescans the batches in flight. It runs less often in
# a worker, and the objects made at start-up are frozen out of its scans.
GC_THRESHOLDS = (100_000, 50, 100)


def write_stats(service: IngestService, path: Path) -> None:
    """Write the counters (and latency percentiles) as JSON, atomically."""
    body = service.stats.snapshot().as_dict() | {
        "latency_ms": latency_summary(list(service.latencies_ms)),
        "pid": os.getpid(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


@click.group()
def ingest() -> None:
    """Ingest: MQTT → validation → asset registry → store, acknowledging only stored readings."""


@ingest.command("run")
@click.option("--client-id", help="MQTT client id (default: <mqtt.client_id>-ingest). Unique per worker.")
@click.option("--shared-group", help="Share the load with other workers (MQTT 5 $share/<group>/...).")
@click.option(
    "--stats-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the counters as JSON to this file every --stats-interval (for scripts and benchmarks).",
)
@click.option(
    "--stats-interval", type=click.FloatRange(0.05, 3600), default=1.0, show_default=True,
    help="Seconds between stats-file writes.",
)  # fmt: skip
@click.option(
    "--log-interval", type=click.FloatRange(0.1, 86400), default=10.0, show_default=True,
    help="Seconds between log lines.",
)  # fmt: skip
def run(
    client_id: str | None,
    shared_group: str | None,
    stats_file: Path | None,
    stats_interval: float,
    log_interval: float,
) -> None:
    """Run the ingest service until SIGINT/SIGTERM (Ctrl-C).

    Settings: SITEWATCH_MQTT__URL, SITEWATCH_STORE__BACKEND, SITEWATCH_INGEST__* (docs/ingest.md).
    """
    try:
        settings = load_settings()
        if shared_group:
            settings = settings.model_copy(
                update={"ingest": settings.ingest.model_copy(update={"shared_group": shared_group})}
            )
        service = build_service(settings, client_id)
    except ValidationError as exc:
        reason = "; ".join(validation_problems(exc))
        raise click.ClickException(_("invalid settings: {reason}", reason=reason)) from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(_("cannot start ingest: {reason}", reason=exc)) from None
    service.log_interval_s = log_interval
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    writer: threading.Thread | None = None
    if stats_file is not None:
        path = stats_file

        def keep_writing() -> None:
            while not stop.wait(stats_interval):
                write_stats(service, path)

        writer = threading.Thread(target=keep_writing, name="ingest-stats", daemon=True)
        writer.start()
    liveness = None
    if settings.ingest.liveness:  # gateways' births, deaths and counters, beside the readings
        from .liveness import LivenessConsumer

        liveness = LivenessConsumer(settings, service.store, client_id=f"{service.client_id}-liveness")
        liveness.start()
    try:
        service.run(stop)
    finally:
        if liveness is not None:
            liveness.stop()
        service.store.close()
        if stats_file is not None:
            write_stats(service, stats_file)
    if service.failed.is_set():
        raise click.ClickException(_("ingest stopped after an internal error (see the log)"))


@ingest.command("deadletters")
@click.option(
    "--count", type=click.IntRange(1), help="Stop after this many dead letters (default: run until Ctrl-C)."
)
@click.option("--timeout", type=click.FloatRange(0.1), help="Stop after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print each dead letter as one JSON line.")
def deadletters(count: int | None, timeout: float | None, as_json: bool) -> None:
    """Show what ingest refuses (dead letters), as it happens.

    Subscribes to sitewatch/v1/_deadletter on SITEWATCH_MQTT__URL and prints the reason, the
    topic and the detail of each dead letter.
    """
    from .deadletters import watch

    settings = load_settings()
    shown = watch(settings.mqtt, count=count, timeout_s=timeout, as_json=as_json)
    if count is not None and shown < count:
        raise click.ClickException(
            _("{shown} of {count} dead letters received before the timeout", shown=shown, count=count)
        )
