"""Backfill: days of history for some compounds, as fast as the engine goes, into Parquet files.

Output directory:

- ``readings.parquet``: long form, one row per reading: ts_ms, device, compound, kind, metric, value
- ``events.parquet``: ts_ms, device, compound, kind, event, active (null for stateless), attrs (JSON)
- ``labels.parquet`` and ``labels.csv``: the injected faults (ground truth): device, compound, kind,
  fault, start_ms, end_ms, detail, magnitude, unit, band, announced, announced_ms, observable, hidden
- ``harmless.parquet`` and ``harmless.csv``: harmless anomalies (not faults): device (empty when
  compound-wide), compound, kind, anomaly, start_ms, end_ms, detail
- ``outages.parquet`` and ``outages.csv``: shared causes (a compound's power cut, a building's):
  compound, cause, start_ms, end_ms, building, gateway_dark, devices, device_ids
- ``devices.parquet``: every simulated device with what the models drew for it (residents served...)
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .clock import MS_PER_DAY
from .engine import Chunk, SiteEngine, SiteEvent, iter_events
from .faults import FaultLabel
from .harmless import HarmlessLabel, OutageLabel
from .models import MODELS
from .site import SIMULATED_KINDS, Site

if TYPE_CHECKING:
    import pandas as pd

METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for k in SIMULATED_KINDS for m in MODELS[k].metrics))
_METRIC_INDEX = {m: i for i, m in enumerate(METRICS)}
_KIND_NAMES = pa.array([k.value for k in SIMULATED_KINDS])
_KIND_INDEX = {k: i for i, k in enumerate(SIMULATED_KINDS)}

READINGS_SCHEMA = pa.schema([
    ("ts_ms", pa.int64()),
    ("device", pa.dictionary(pa.int32(), pa.string())),
    ("compound", pa.dictionary(pa.int32(), pa.string())),
    ("kind", pa.dictionary(pa.int32(), pa.string())),
    ("metric", pa.dictionary(pa.int32(), pa.string())),
    ("value", pa.float64()),
])  # fmt: skip
EVENTS_SCHEMA = pa.schema([
    ("ts_ms", pa.int64()), ("device", pa.string()), ("compound", pa.string()), ("kind", pa.string()),
    ("event", pa.string()), ("active", pa.bool_()), ("attrs", pa.string()),
])  # fmt: skip
LABELS_SCHEMA = pa.schema([
    ("device", pa.string()), ("compound", pa.string()), ("kind", pa.string()), ("fault", pa.string()),
    ("start_ms", pa.int64()), ("end_ms", pa.int64()), ("detail", pa.string()), ("magnitude", pa.float64()),
    ("unit", pa.string()), ("band", pa.string()), ("announced", pa.bool_()), ("announced_ms", pa.int64()),
    ("observable", pa.bool_()), ("hidden", pa.string()),
])  # fmt: skip
HARMLESS_SCHEMA = pa.schema([
    ("device", pa.string()), ("compound", pa.string()), ("kind", pa.string()), ("anomaly", pa.string()),
    ("start_ms", pa.int64()), ("end_ms", pa.int64()), ("detail", pa.string()),
])  # fmt: skip
OUTAGES_SCHEMA = pa.schema([
    ("compound", pa.string()), ("cause", pa.string()), ("start_ms", pa.int64()), ("end_ms", pa.int64()),
    ("building", pa.string()), ("gateway_dark", pa.bool_()), ("devices", pa.int64()), ("device_ids", pa.string()),
])  # fmt: skip
DEVICES_SCHEMA = pa.schema([
    ("device", pa.string()), ("compound", pa.string()), ("kind", pa.string()), ("building", pa.string()),
    ("interval_s", pa.int64()), ("latitude", pa.float64()), ("longitude", pa.float64()), ("scope", pa.string()),
    ("residents", pa.float64()),
    ("expected_daily", pa.float64()), ("rated_kw", pa.float64()), ("h265", pa.float64()),
    ("overwrite", pa.float64()),
])  # fmt: skip

ProgressFn = Callable[[int, int], None]  # (steps done, readings so far)


@dataclass(slots=True)
class BackfillResult:
    """What a backfill produced."""

    out_dir: Path
    compounds: int = 0
    devices: int = 0
    readings: int = 0
    events: int = 0
    labels: list[FaultLabel] = field(default_factory=list)
    harmless: list[HarmlessLabel] = field(default_factory=list)
    outages: list[OutageLabel] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time (steadier than wall time on a shared machine)

    @property
    def readings_per_s(self) -> float:
        """Readings generated and written per second of wall time."""
        return self.readings / self.seconds if self.seconds > 0 else 0.0

    @property
    def readings_per_cpu_s(self) -> float:
        """Readings generated and written per CPU second of this process."""
        return self.readings / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


class _Dictionary:
    """Device and compound ids of the run, as Arrow dictionaries."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self.devices = pa.array([d.device for s in sites for d in s.devices])
        self.compounds = pa.array([s.compound for s in sites])
        self.device_index = {d.device: i for i, d in enumerate(d for s in sites for d in s.devices)}


def readings_table(chunks: Sequence[Chunk], dictionary: _Dictionary, compound_index: int) -> pa.Table:
    """Long-form readings of ``chunks`` (sorted by time), NaN values left out."""
    ts_parts, dev_parts, kind_parts, metric_parts, value_parts = [], [], [], [], []
    for chunk in chunks:
        if chunk.rows.size == 0:
            continue
        ids = chunk.block.ids
        dev = np.fromiter(
            (dictionary.device_index[ids[int(r)]] for r in chunk.rows), np.int32, chunk.rows.size
        )
        dev_grid = np.broadcast_to(dev[:, None], chunk.times.shape)
        kind = _KIND_INDEX[chunk.block.kind]
        for name, values in chunk.values.items():
            keep = ~np.isnan(values)
            count = int(keep.sum())
            if not count:
                continue
            ts_parts.append(chunk.times[keep])
            dev_parts.append(dev_grid[keep])
            value_parts.append(values[keep].astype(np.float64))
            kind_parts.append(np.full(count, kind, np.int32))
            metric_parts.append(np.full(count, _METRIC_INDEX[name], np.int32))
    if not ts_parts:
        return READINGS_SCHEMA.empty_table()
    ts = np.concatenate(ts_parts)
    order = np.argsort(ts, kind="stable")
    n = ts.size

    def dict_array(indices: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(indices[order], pa.int32()), values)

    return pa.table(
        [
            pa.array(ts[order], pa.int64()),
            dict_array(np.concatenate(dev_parts), dictionary.devices),
            pa.DictionaryArray.from_arrays(
                pa.array(np.full(n, compound_index, np.int32)), dictionary.compounds
            ),
            dict_array(np.concatenate(kind_parts), _KIND_NAMES),
            dict_array(np.concatenate(metric_parts), pa.array(list(METRICS))),
            pa.array(np.concatenate(value_parts)[order], pa.float64()),
        ],
        schema=READINGS_SCHEMA,
    )


def events_table(events: Sequence[SiteEvent], compound: str) -> pa.Table:
    """Events as a table, sorted by time."""
    ordered = sorted(events, key=lambda e: e.ts_ms)
    return pa.table(
        {
            "ts_ms": pa.array([e.ts_ms for e in ordered], pa.int64()),
            "device": pa.array([e.device for e in ordered], pa.string()),
            "compound": pa.array([compound] * len(ordered), pa.string()),
            "kind": pa.array([e.kind.value for e in ordered], pa.string()),
            "event": pa.array([e.name for e in ordered], pa.string()),
            "active": pa.array([e.active for e in ordered], pa.bool_()),
            "attrs": pa.array(
                [orjson.dumps(e.attrs).decode() if e.attrs else None for e in ordered], pa.string()
            ),
        },
        schema=EVENTS_SCHEMA,
    )


def _write_table(
    rows: list[dict[str, object]], schema: pa.Schema, out_dir: Path, name: str, csv_too: bool
) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out_dir / f"{name}.parquet")
    if csv_too:  # UTF-8 with BOM, so Excel opens it correctly
        with open(out_dir / f"{name}.csv", "w", encoding="utf-8-sig", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=schema.names)
            writer.writeheader()
            writer.writerows(rows)


def write_labels(
    labels: Sequence[FaultLabel], out_dir: Path, harmless: Sequence[HarmlessLabel] = (),
    outages: Sequence[OutageLabel] = (),
) -> None:  # fmt: skip
    """The labels, harmless-anomaly and outage tables, each as Parquet and as CSV."""
    key = lambda x: (x.start_ms, getattr(x, "device", ""))  # noqa: E731
    _write_table([x.to_row() for x in sorted(labels, key=key)], LABELS_SCHEMA, out_dir, "labels", True)
    _write_table([x.to_row() for x in sorted(harmless, key=key)], HARMLESS_SCHEMA, out_dir, "harmless", True)
    _write_table([x.to_row() for x in sorted(outages, key=key)], OUTAGES_SCHEMA, out_dir, "outages", True)


def backfill(
    sites: Sequence[Site], start_ms: int, days: int, out_dir: Path, *, seed: int = 0, faults: str = "random",
    fault_rate: float = 1.0, anomalies: bool = True, progress: ProgressFn | None = None,
) -> BackfillResult:  # fmt: skip
    """Generate ``days`` days from ``start_ms`` for ``sites`` into ``out_dir``; one day per step per site."""
    if days < 1:
        raise ValueError("days must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    result = BackfillResult(out_dir, compounds=len(sites), devices=sum(len(s.devices) for s in sites))
    dictionary = _Dictionary(sites)
    end_ms = start_ms + days * MS_PER_DAY
    steps = 0
    devices: list[dict[str, object]] = []
    with (
        pq.ParquetWriter(out_dir / "readings.parquet", READINGS_SCHEMA, compression="zstd") as readings,
        pq.ParquetWriter(out_dir / "events.parquet", EVENTS_SCHEMA, compression="zstd") as events,
    ):
        for index, site in enumerate(sites):
            engine = SiteEngine(site, seed=seed, start_ms=start_ms, anomalies=anomalies)
            engine.plan(start_ms, end_ms, mode=faults, rate=fault_rate)
            for day in range(days):
                a = start_ms + day * MS_PER_DAY
                chunks, site_events = engine.window(a, a + MS_PER_DAY)
                table = readings_table(chunks, dictionary, index)
                readings.write_table(table)
                all_events = site_events + list(iter_events(chunks))
                all_events = [e for e in all_events if start_ms <= e.ts_ms < end_ms]
                if all_events:
                    events.write_table(events_table(all_events, site.compound))
                result.readings += table.num_rows
                result.events += len(all_events)
                steps += 1
                if progress is not None:
                    progress(steps, result.readings)
            result.labels += engine.labels
            result.harmless += [h for h in engine.harmless if h.start_ms < end_ms and h.end_ms > start_ms]
            result.outages += engine.outages
            devices += engine.describe()
    write_labels(result.labels, out_dir, result.harmless, result.outages)
    _write_table(devices, DEVICES_SCHEMA, out_dir, "devices", False)
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu
    return result


@dataclass(frozen=True, slots=True)
class History:
    """A backfill read back: readings (long form), events, fault labels, harmless anomalies, outages and
    devices, as pandas DataFrames (the last three empty for a backfill written before they existed)."""

    readings: pd.DataFrame
    events: pd.DataFrame
    labels: pd.DataFrame
    harmless: pd.DataFrame
    outages: pd.DataFrame
    devices: pd.DataFrame

    def wide(self, kind: str | None = None) -> pd.DataFrame:
        """Readings with one column per metric, indexed by (device, ts_ms); optionally one kind only."""
        frame = self.readings if kind is None else self.readings[self.readings["kind"] == kind]
        frame = frame.assign(device=frame["device"].astype(str), metric=frame["metric"].astype(str))
        return frame.pivot_table(index=["device", "ts_ms"], columns="metric", values="value", aggfunc="first")


_SUBSET_TABLES = ("readings", "events", "labels", "harmless", "devices")


def subset_backfill(src: Path | str, dst: Path | str, kinds: Sequence[str]) -> dict[str, int]:
    """Copy the backfill in ``src`` to ``dst`` keeping only the devices of ``kinds``; rows kept per table.

    Readings, events, labels, harmless anomalies and devices are filtered on their ``kind`` column;
    outages (a compound's or a building's, naming no kind) are copied whole. Labels, harmless
    anomalies and outages are written as CSV too, like :func:`write_labels`.
    """
    source, out = Path(src), Path(dst)
    if source.resolve() == out.resolve():
        raise ValueError("the subset must go to another directory")
    unknown = sorted(set(kinds) - {k.value for k in SIMULATED_KINDS})
    if unknown or not kinds:
        raise ValueError(f"unknown kinds: {', '.join(unknown) or '(none given)'}")
    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, int] = {}
    for name in (*_SUBSET_TABLES, "outages"):
        path = source / f"{name}.parquet"
        if not path.exists():
            continue
        table = pq.read_table(path)
        if name != "outages":
            column = table.column("kind").cast(pa.string())
            table = table.filter(pc.is_in(column, value_set=pa.array(list(kinds), pa.string())))
        pq.write_table(table, out / f"{name}.parquet", compression="zstd")
        if name in ("labels", "harmless", "outages"):
            with open(out / f"{name}.csv", "w", encoding="utf-8-sig", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=table.schema.names)
                writer.writeheader()
                writer.writerows(table.to_pylist())
        kept[name] = table.num_rows
    return kept


def read_backfill(out_dir: Path | str) -> History:
    """Read the files a backfill wrote to ``out_dir``."""
    import pandas as pd

    out = Path(out_dir)

    def table(name: str, schema: pa.Schema) -> pd.DataFrame:
        path = out / f"{name}.parquet"
        return pd.read_parquet(path) if path.exists() else schema.empty_table().to_pandas()

    return History(
        pd.read_parquet(out / "readings.parquet"),
        pd.read_parquet(out / "events.parquet"),
        pd.read_parquet(out / "labels.parquet"),
        table("harmless", HARMLESS_SCHEMA),
        table("outages", OUTAGES_SCHEMA),
        table("devices", DEVICES_SCHEMA),
    )
