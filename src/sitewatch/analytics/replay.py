"""A backfill directory replayed through the engine as the live service would feed it.

Readings are read straight from the backfill's Parquet files (long form, one row group at a time),
gathered into one sample per device and instant (only the metrics some rule reads: the others
change no finding), and fed per compound in time order, one minute
of the gateway's messages at a time: that minute's samples, then its events, then ``tick`` at the
minute's end. A compound's power cut with its gateway dark (``outages.parquet``) becomes the
gateway going offline and back online. Each compound has its own engine (compounds share no
state), so row groups of several compounds may come in any order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..contract import DeviceKind, Event, Finding, Sample
from .engine import Engine, Site
from .rules import RuleSet

MINUTE_MS = 60_000
ProgressFn = Callable[[int, int], None]  # (row groups done, row groups in all)


def sites_of(history: Path) -> dict[str, Site]:
    """Each compound's place, from the backfill's devices table."""
    devices = pd.read_parquet(history / "devices.parquet", columns=["compound", "latitude", "longitude"])
    first = devices.groupby("compound").first()
    return {str(c): Site(float(r.latitude), float(r.longitude)) for c, r in first.iterrows()}


def _events(history: Path) -> dict[str, list[tuple[int, Event]]]:
    path = history / "events.parquet"
    out: dict[str, list[tuple[int, Event]]] = {}
    if not path.exists():
        return out
    frame = pd.read_parquet(path)
    for ts, device, compound, kind, name, active, attrs in frame.itertuples(index=False):
        try:
            parsed = orjson.loads(attrs) if isinstance(attrs, str) and attrs else {}
        except orjson.JSONDecodeError:
            parsed = {}
        flag = (
            None
            if active is None or active is pd.NA or (isinstance(active, float) and active != active)
            else bool(active)
        )
        event = Event(str(device), DeviceKind(str(kind)), int(ts), str(name), flag,
                      {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {})  # fmt: skip
        out.setdefault(str(compound), []).append((int(ts), event))
    for rows in out.values():
        rows.sort(key=lambda r: r[0])
    return out


def _gateway_states(history: Path) -> dict[str, list[tuple[int, bool]]]:
    path = history / "outages.parquet"
    out: dict[str, list[tuple[int, bool]]] = {}
    if not path.exists():
        return out
    frame = pd.read_parquet(path)
    for row in frame.to_dict("records"):
        if bool(row["gateway_dark"]):
            start, end = int(row["start_ms"]), int(row["end_ms"])
            out.setdefault(str(row["compound"]), []).extend([(start, False), (end, True)])
    for rows in out.values():
        rows.sort()
    return out


def needed_metrics(rules: RuleSet) -> set[str]:
    """The metrics some rule reads (the others change no finding: the replay leaves them out)."""
    out: set[str] = set()
    for rule in rules.rules:
        out.update(c.metric for c in rule.when)
        for name in ("metric", "load"):
            if isinstance(getattr(rule, name, None), str):
                out.add(getattr(rule, name))
        condition = getattr(rule, "condition", None)
        if condition is not None:
            out.add(condition.metric)
    return out


def _samples(table: Any, needed: set[str] | None = None) -> Iterator[tuple[str, str, list[Sample]]]:
    """(compound, minute batch) of samples from one row group, in time order per compound."""
    if needed is not None:
        metric = table.column("metric").combine_chunks()
        keep = np.isin(
            metric.indices.to_numpy(), [i for i, m in enumerate(metric.dictionary.to_pylist()) if m in needed]
        )
        table = table.filter(keep)
    if table.num_rows == 0:
        return
    ts = table.column("ts_ms").to_numpy()
    cols = {}
    for name in ("device", "compound", "kind", "metric"):
        col = table.column(name).combine_chunks()
        cols[name] = (col.indices.to_numpy(), col.dictionary.to_pylist())
    value = table.column("value").to_numpy()
    dev_idx, dev_names = cols["device"]
    comp_idx, comp_names = cols["compound"]
    kind_idx, kind_names = cols["kind"]
    met_idx, met_names = cols["metric"]
    kinds = [DeviceKind(k) for k in kind_names]
    order = np.lexsort((dev_idx, ts, comp_idx))
    ts, dev_idx, comp_idx, kind_idx, met_idx, value = (
        a[order] for a in (ts, dev_idx, comp_idx, kind_idx, met_idx, value)
    )
    change = (
        np.flatnonzero((ts[1:] != ts[:-1]) | (dev_idx[1:] != dev_idx[:-1]) | (comp_idx[1:] != comp_idx[:-1]))
        + 1
    )
    starts = np.concatenate([[0], change]).tolist()
    ends = [*starts[1:], len(ts)]
    ts_l, dev_l, comp_l, kind_l = ts.tolist(), dev_idx.tolist(), comp_idx.tolist(), kind_idx.tolist()
    met_l = [met_names[i] for i in met_idx.tolist()]
    val_l = value.tolist()
    batch: list[Sample] = []
    bucket = -1
    compound = -1
    for a, b in zip(starts, ends, strict=True):
        t = ts_l[a]
        c = comp_l[a]
        if (t // MINUTE_MS != bucket or c != compound) and batch:
            yield comp_names[compound], str(bucket), batch
            batch = []
        bucket, compound = t // MINUTE_MS, c
        batch.append(Sample(device=dev_names[dev_l[a]], kind=kinds[kind_l[a]], ts_ms=t,
                            values=dict(zip(met_l[a:b], val_l[a:b], strict=True))))  # fmt: skip
    if batch:
        yield comp_names[compound], str(bucket), batch


class _Feed:
    """One compound's engine and the events and gateway states still to feed."""

    def __init__(
        self, engine: Engine, events: list[tuple[int, Event]], states: list[tuple[int, bool]]
    ) -> None:
        self.engine = engine
        self.events = events
        self.states = states
        self.e = 0
        self.s = 0
        self.next_tick: int | None = None

    def until(self, compound: str, gateway: str, t: int, out: list[Finding]) -> None:
        """Feed events and gateway states before ``t`` and tick through the minutes before it."""
        engine = self.engine
        if self.next_tick is None:
            self.next_tick = (t // MINUTE_MS) * MINUTE_MS
        while self.next_tick <= t:
            edge = self.next_tick
            while self.s < len(self.states) and self.states[self.s][0] <= edge:
                ts, online = self.states[self.s]
                out += engine.on_gateway(compound, gateway, online, ts)
                self.s += 1
            while self.e < len(self.events) and self.events[self.e][0] < edge:
                out += engine.on_event(compound, gateway, self.events[self.e][1])
                self.e += 1
            out += engine.tick(edge)
            self.next_tick += MINUTE_MS


@dataclass(slots=True)
class Replayed:
    """What a replay made: every finding message, the span, and what the engine was given and took."""

    findings: list[Finding]
    first_ms: int
    end_ms: int
    readings: int = 0  # rows of readings.parquet replayed (every metric, as the live service gets them)
    samples: int = 0
    engine_s: float = 0.0  # seconds inside the engine's calls (not reading Parquet)


def replay(history: Path, rules: RuleSet, progress: ProgressFn | None = None) -> Replayed:
    """Replay the backfill in ``history`` through the rules (see the module docstring)."""
    sites = sites_of(history)
    events = _events(history)
    states = _gateway_states(history)
    feeds: dict[str, _Feed] = {}
    out: list[Finding] = []
    last = 0
    first: int | None = None
    parquet = pq.ParquetFile(history / "readings.parquet")
    needed = needed_metrics(rules)
    groups = parquet.num_row_groups
    readings = samples = 0
    engine_s = 0.0
    clock = time.perf_counter
    for g in range(groups):
        table = parquet.read_row_group(g, columns=["ts_ms", "device", "compound", "kind", "metric", "value"])
        readings += table.num_rows
        if table.num_rows:
            span = pc.min_max(table.column("ts_ms")).as_py()
            first = span["min"] if first is None else min(first, span["min"])
            last = max(last, span["max"])
        for compound, _bucket, batch in _samples(table, needed):
            feed = feeds.get(compound)
            if feed is None:
                feed = feeds[compound] = _Feed(
                    Engine(rules, sites), events.get(compound, []), states.get(compound, [])
                )
            gateway = f"{compound}-GW01"
            t = batch[0].ts_ms
            t0 = clock()
            feed.until(compound, gateway, t, out)
            out += feed.engine.on_samples(compound, gateway, batch)
            engine_s += clock() - t0
            samples += len(batch)
        if progress is not None:
            progress(g + 1, groups)
    end = (last // MINUTE_MS + 1) * MINUTE_MS
    for compound, feed in feeds.items():
        feed.until(compound, f"{compound}-GW01", end, out)
    return Replayed(out, first if first is not None else end, end, readings, samples, engine_s)
