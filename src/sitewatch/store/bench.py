"""How fast a store accepts readings written directly: the limit ingest is measured against."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..contract import KINDS, DeviceKind, Sample
from .base import Store, StoredSample


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
