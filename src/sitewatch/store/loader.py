"""Load a ``simulate backfill`` directory (readings and events) into a store, as fast as it writes.

Readings come long form (one row per reading: ts_ms, device, compound, kind, metric, value, and
any of the hierarchy tags ``district``, ``street``, ``community``, ``building`` as extra columns);
they are read a Parquet batch at a time, gathered into samples (one per device and time) and
written through the store's two-step write: the next batch is prepared (checked, encoded) while
up to ``concurrent_writes`` earlier ones are being written. Writes are idempotent, so loading a
directory twice stores it once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contract import DeviceKind, Event, Sample
from .base import Store, StoredEvent, StoredSample
from .checks import EXTRA_TAG_KEYS

log = logging.getLogger(__name__)

READ_ROWS = 262_144  # Parquet rows per read
EVENT_BATCH = 10_000
MAX_WRITERS = 3  # batches written at once (InfluxDB serves several; the embedded store one)

Progress = Callable[[int, int], None]  # (readings, events) added since the last call


@dataclass(slots=True)
class LoadResult:
    """What a load wrote."""

    readings: int = 0
    events: int = 0
    seconds: float = 0.0

    @property
    def readings_per_s(self) -> float:
        """Readings written per second of wall time."""
        return self.readings / self.seconds if self.seconds > 0 else 0.0


def backfill_files(directory: Path) -> tuple[Path, Path | None]:
    """The readings and (if present) events files of a backfill directory; FileNotFoundError if none."""
    readings = directory / "readings.parquet"
    if not readings.is_file():
        raise FileNotFoundError(
            f"{readings} does not exist: is {directory} a `sitewatch simulate backfill` output?"
        )
    events = directory / "events.parquet"
    return readings, events if events.is_file() else None


def counts(directory: Path) -> tuple[int, int]:
    """Rows of the readings and events files (for a progress bar's total)."""
    readings, events = backfill_files(directory)
    return (
        pq.ParquetFile(readings).metadata.num_rows,
        pq.ParquetFile(events).metadata.num_rows if events else 0,
    )


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """Dictionary indices and values of a string column (dictionary-encoded or not)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    return array.indices.to_numpy(zero_copy_only=False), array.dictionary.to_pylist()


def samples_of(batch: pa.RecordBatch) -> list[StoredSample]:
    """The samples of a batch of long-form readings, one per device and time."""
    if batch.num_rows == 0:
        return []
    names = batch.schema.names
    device, devices = _codes(batch.column(names.index("device")))
    ts = batch.column(names.index("ts_ms")).to_numpy(zero_copy_only=False)
    order = np.lexsort((ts, device))
    device, ts = device[order], ts[order]
    cut = np.flatnonzero((np.diff(device) != 0) | (np.diff(ts) != 0)) + 1
    starts = np.concatenate(([0], cut)).tolist()
    ends = np.concatenate((cut, [len(ts)])).tolist()
    metric_codes, metric_names = _codes(batch.column(names.index("metric")))
    metrics = [metric_names[i] for i in metric_codes[order].tolist()]
    values = batch.column(names.index("value")).to_numpy(zero_copy_only=False)[order].tolist()
    per_row: dict[str, list[str]] = {}
    for column in ("compound", "kind", *sorted(k for k in EXTRA_TAG_KEYS if k in names)):
        codes, labels = _codes(batch.column(names.index(column)))
        per_row[column] = [labels[i] for i in codes[order][starts].tolist()]
    kinds = {k.value: k for k in DeviceKind}
    tag_columns = [k for k in sorted(EXTRA_TAG_KEYS) if k in per_row]
    device_names = [devices[i] for i in device[starts].tolist()]
    stamps = ts[starts].tolist()
    out = []
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        tags = {k: v for k in tag_columns if (v := per_row[k][n])}
        sample = Sample(
            device_names[n],
            kinds[per_row["kind"][n]],
            stamps[n],
            dict(zip(metrics[a:b], values[a:b], strict=True)),
        )
        out.append(StoredSample(sample, per_row["compound"][n], tags))
    return out


def events_of(table: pa.Table | pa.RecordBatch) -> list[StoredEvent]:
    """The events of a batch of the events file."""
    rows = table.to_pylist()
    out = []
    for row in rows:
        attrs = orjson.loads(row["attrs"]) if row.get("attrs") else {}
        tags = {k: str(row[k]) for k in sorted(EXTRA_TAG_KEYS) if row.get(k)}
        event = Event(
            device=row["device"], kind=DeviceKind(row["kind"]), ts_ms=int(row["ts_ms"]), name=row["event"],
            active=row.get("active"), attrs={str(k): str(v) for k, v in attrs.items()},
        )  # fmt: skip
        out.append(StoredEvent(event, row["compound"], tags))
    return out


def _reading_batches(path: Path, batch_readings: int) -> Iterator[list[StoredSample]]:
    """Samples in batches of about ``batch_readings`` readings."""
    pending: list[StoredSample] = []
    size = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS):
        for item in samples_of(batch):
            pending.append(item)
            size += len(item.sample.values)
            if size >= batch_readings:
                yield pending
                pending, size = [], 0
    if pending:
        yield pending


def load_backfill(
    directory: Path, store: Store, *, batch_readings: int = 36_000, progress: Progress | None = None
) -> LoadResult:
    """Write a backfill directory's readings and events into ``store``; what was written."""
    readings_path, events_path = backfill_files(directory)
    result = LoadResult()
    started = time.perf_counter()
    writers = max(1, min(MAX_WRITERS, store.concurrent_writes))
    with ThreadPoolExecutor(writers, thread_name_prefix="store-load") as pool:
        in_flight: deque[tuple[Future[None], int, int]] = deque()

        def settle(limit: int) -> None:
            while len(in_flight) > limit:
                future, readings, events = in_flight.popleft()
                future.result()  # a refusal or an unavailable store stops the load here
                result.readings += readings
                result.events += events
                if progress is not None:
                    progress(readings, events)

        for samples in _reading_batches(readings_path, batch_readings):
            prepared = store.prepare(samples)
            settle(writers - 1)
            in_flight.append((pool.submit(store.write_prepared, prepared), prepared_readings(samples), 0))
        if events_path is not None:
            for batch in pq.ParquetFile(events_path).iter_batches(batch_size=EVENT_BATCH):
                items = events_of(batch)
                prepared = store.prepare([], items)
                settle(writers - 1)
                in_flight.append((pool.submit(store.write_prepared, prepared), 0, len(items)))
        settle(0)
    result.seconds = time.perf_counter() - started
    log.debug(
        "loaded %s readings and %s events from %s in %.1f s",
        result.readings,
        result.events,
        directory,
        result.seconds,
    )
    return result


def prepared_readings(samples: list[StoredSample]) -> int:
    """Readings (metric values) of some samples."""
    return sum(len(s.sample.values) for s in samples)
