"""How fast a store accepts readings written directly: the limit ingest is measured against."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import click

from ...contract import KINDS, DeviceKind, Sample
from ...settings import IngestSettings
from ...store.base import Store, StoredSample


def synthetic_samples(
    devices: int, samples_per_device: int, *, start_ms: int = 1_700_000_000_000, step_ms: int = 1000,
    kind: DeviceKind = DeviceKind.ELEVATOR, compound: str = "BENCH",
) -> list[StoredSample]:  # fmt: skip
    """Samples of ``devices`` devices of ``kind``, one per ``step_ms``, each with every metric of the kind.

    Values are deterministic and inside each metric's valid range.
    """
    metrics = list(KINDS[kind].metrics.values())
    out: list[StoredSample] = []
    for i in range(samples_per_device):
        ts = start_ms + i * step_ms
        for d in range(devices):
            values = {
                m.name: float(min(m.maximum, max(m.minimum, (d + i + j) % 7))) for j, m in enumerate(metrics)
            }
            out.append(
                StoredSample(Sample(f"{compound}-{KINDS[kind].code}{d:05d}", kind, ts, values), compound)
            )
    return out


def measure_direct_write(
    store: Store,
    samples: Sequence[StoredSample],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Readings per second ``store`` accepts when ``samples`` are written directly in batches.

    ``batch_size`` counts readings (metric values), like ingest's batches; a batch holds whole
    samples. ``progress`` is called with the readings written after each batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batches: list[list[StoredSample]] = []
    batch: list[StoredSample] = []
    in_batch = 0
    for item in samples:
        batch.append(item)
        in_batch += len(item.sample.values)
        if in_batch >= batch_size:
            batches.append(batch)
            batch, in_batch = [], 0
    if batch:
        batches.append(batch)
    readings = 0
    started = time.perf_counter()
    for chunk in batches:
        store.write(chunk)
        written = sum(len(s.sample.values) for s in chunk)
        readings += written
        if progress is not None:
            progress(written)
    elapsed = time.perf_counter() - started
    return readings / elapsed if elapsed > 0 else float("inf")


EMBEDDED_TARGET = 100_000  # readings/s the embedded store must accept (design, section 6)


def _measure_one(
    label: str, store: Store, samples: Sequence[StoredSample], batch_size: int, quiet: bool
) -> dict[str, object]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    readings = sum(len(s.sample.values) for s in samples)
    figures: dict[str, object] = {"readings": readings, "batch_readings": batch_size}
    for phase in ("first_write", "rewrite"):
        with Progress(
            TextColumn(f"{label} {phase.replace('_', ' ')}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), transient=True, disable=quiet,
        ) as bar:  # fmt: skip
            task = bar.add_task(phase, total=readings)
            rate = measure_direct_write(store, samples, batch_size, partial(bar.advance, task))
        figures[f"{phase}_readings_per_s"] = round(rate)
    figures["stored"] = store.count_readings()
    return figures


@click.command("store")
@click.option(
    "--backend", type=click.Choice(["embedded", "influxdb", "both"]), default="embedded", show_default=True,
    help="Which store to measure.",
)  # fmt: skip
@click.option(
    "--devices", type=click.IntRange(min=1), default=1000, show_default=True, help="Elevators written."
)
@click.option(
    "--samples", type=click.IntRange(min=1), default=200, show_default=True, help="Samples per device."
)
@click.option(
    "--batch", "batch_size", type=click.IntRange(min=1), default=IngestSettings().batch_readings,
    show_default=True, help="Readings per write (ingest's default batch).",
)  # fmt: skip
@click.option(
    "--influx-url",
    help="InfluxDB to measure (a database 'sitewatch_bench' is created and dropped); "
    "default: a throw-away local InfluxDB 1.x.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_store(
    backend: str, devices: int, samples: int, batch_size: int, influx_url: str | None, as_json: bool
) -> None:
    """Write readings directly to a store (no MQTT, no ingest) and print readings per second.

    Each backend is measured twice on the same points: the first write, and a rewrite (a replay
    after an outage: every point already stored, so nothing is added). The figure for the
    embedded store is judged against its target of 100,000 readings/s.
    """
    import json
    import logging
    import tempfile
    from pathlib import Path

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    data = synthetic_samples(devices, samples)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-store-") as tmp:
        work = Path(tmp)
        if backend in ("embedded", "both"):
            from ...store.embedded_store import EmbeddedStore

            with EmbeddedStore(work / "readings.db") as embedded:
                results["embedded"] = _measure_one("embedded", embedded, data, batch_size, as_json)
        if backend in ("influxdb", "both"):
            results["influxdb"] = _bench_influx(work, influx_url, data, batch_size, as_json)
    if as_json:
        click.echo(json.dumps({"target_embedded_readings_per_s": EMBEDDED_TARGET, **results}, indent=2))
        return
    for name, f in results.items():
        verdict = ""
        if name == "embedded":
            ok = int(f["first_write_readings_per_s"]) >= EMBEDDED_TARGET  # type: ignore[call-overload]
            verdict = f"  target >= {EMBEDDED_TARGET:,}/s: {'PASS' if ok else 'MISS'}"
        click.echo(
            f"{name:>8} direct write: {f['first_write_readings_per_s']:,} readings/s first write, "
            f"{f['rewrite_readings_per_s']:,} readings/s rewrite; {f['stored']:,} of {f['readings']:,} "
            f"readings stored (batches of {batch_size:,}){verdict}"
        )


def _bench_influx(
    work: object, url: str | None, data: Sequence[StoredSample], batch_size: int, quiet: bool
) -> dict[str, object]:
    from pathlib import Path

    import httpx

    from ...store.influx_store import InfluxStore
    from ..services import InfluxDBService

    service = None
    if url is None:
        service = InfluxDBService(Path(str(work)) / "influxdb")
        service.start()
        url = service.url
    database = "sitewatch_bench"
    try:
        with InfluxStore(url, database) as influx:
            httpx.post(f"{url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)
            figures = _measure_one("influxdb", influx, data, batch_size, quiet)
            figures["url"] = url
            httpx.post(f"{url}/query", data={"q": f'DROP DATABASE "{database}"'}, timeout=30)
    finally:
        if service is not None:
            service.stop()
    return figures
