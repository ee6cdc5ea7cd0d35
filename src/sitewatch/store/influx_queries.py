"""InfluxStore's reading side: InfluxQL, and what InfluxQL cannot say computed here.

What InfluxQL does natively, and is used as is: time ranges, tag filters, per-device aggregates
per window (``GROUP BY time(length, offset), "device", <group tags>``), ``difference`` per device,
``last()`` per device, the newest event per series, the series index (``SHOW SERIES``).

What it cannot, and how the answer is made the same as the embedded store's:

- windows in a time zone, calendar days, weeks and months: ``GROUP BY time()`` cuts fixed lengths
  at a fixed offset. The shared plan (``windows.plan``) splits the range into runs of equal
  windows and each run is one statement with its own offset (a month is a run; a zone without
  daylight saving, like Asia/Shanghai, makes hours and days one run for any range).
- ``increase``: InfluxQL has no counter-reset rule. Per run, ``first`` and ``last`` per window
  (a native aggregate) give the steps, which telescope; ``difference < 0`` lists the resets (rare),
  whose values are then read back point by point; ``last()`` before the range gives the first
  step. The steps are added here.
- Per-device values combined per group: here, from one row per device and window (an InfluxDB
  1.x subquery doing it measured several times slower than sending the rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..contract import DeviceKind
from .base import (
    Aggregation,
    DeviceRef,
    GroupPoint,
    GroupQuery,
    Latest,
    Point,
    SeriesKey,
    SeriesQuery,
    check_tags,
)
from .derived import (
    check_series_query,
    combine_groups,
    counter_step,
    limited,
    may_have_points,
    runs_of,
)
from .influx_events import InfluxEvents
from .influxql import Series, extra_tags, quote_ident, quote_string, tag_filter, time_range
from .windows import Run

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RESET_STATEMENTS = 500  # reset values read back per request

_INFLUXQL_FUNC = {
    Aggregation.MEAN: "mean({m})",
    Aggregation.MIN: "min({m})",
    Aggregation.MAX: "max({m})",
    Aggregation.LAST: "last({m})",
    Aggregation.COUNT: "count({m})",
    Aggregation.LAST_MINUS_FIRST: "last({m}) - first({m})",
}

# (device, metric, window, value, group)
Row = tuple[str, str, int, float, tuple[str, ...]]
Key = tuple[str, str, tuple[str, ...]]  # device, metric, group


def _in_run(run: Run, start_ms: int) -> list[str]:
    """A run's time condition: its windows, from the range's start (the first may begin before it).

    InfluxDB 1.x drops the start of a subquery's range when the outer query has no time condition
    of its own, so the one subquery here (``difference``) repeats this condition outside.
    """
    return time_range(max(run.start_ms, start_ms), run.end_ms)


def _by_time(run: Run) -> str:
    return f"time({run.length_ms}ms, {run.offset_ms}ms)"


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """Measurement and tags of a line-protocol series key (``m,tag=value,...``), unescaped."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        char = key[i]
        if char == "\\" and i + 1 < len(key) and key[i + 1] in ", =":
            current.append(key[i + 1])
            current.append("\0")  # marks an escaped character so '=' below is not split on
            i += 2
            continue
        if char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    tags = {}
    for part in parts[1:]:
        name, _, value = part.replace("=\0", "\1").partition("=")
        tags[name.replace("\0", "")] = value.replace("\1", "=").replace("\0", "")
    return parts[0].replace("\0", ""), tags


class InfluxQueries(InfluxEvents):
    """Reading methods of ``InfluxStore`` (which provides ``_select``, ``_stream`` and ``_from``)."""

    def _from_kinds(self, kind: DeviceKind | None) -> str:
        kinds = [kind] if kind is not None else list(DeviceKind)
        return ",".join(self._from(k.value) for k in kinds)

    # -- points ----------------------------------------------------------------------------------

    def scan(self, query: SeriesQuery) -> Iterator[Point]:
        """Points of a time range, ordered by device, metric, time; raw points as they arrive."""
        check_series_query(query)
        check_tags(query.tags)
        if not query.metrics or query.end_ms <= query.start_ms:
            return iter(())
        if query.window is None:
            return limited(self._raw(query), query.limit)
        runs = runs_of(query.start_ms, query.end_ms, query.window, query.tz)
        filters = tag_filter(query.compound, query.devices, query.tags)
        source = self._from(query.kind.value)
        if query.aggregation is Aggregation.INCREASE:
            rows = self._increase(source, query.metrics, runs, filters, query.start_ms, query.lookback_ms, ())
        else:
            rows = self._per_device(source, query.metrics, runs, filters, query.start_ms, query.aggregation)
        rows.sort()
        return limited((Point(d, m, w, v) for d, m, w, v, _ in rows), query.limit)

    def _raw_statement(self, query: SeriesQuery) -> str:
        where = time_range(query.start_ms, query.end_ms) + tag_filter(
            query.compound, query.devices, query.tags
        )
        return (
            f"SELECT {','.join(quote_ident(m) for m in dict.fromkeys(query.metrics))} "
            f'FROM {self._from(query.kind.value)} WHERE {" AND ".join(where)} GROUP BY "device"'
        )

    def _raw(self, query: SeriesQuery) -> Iterator[Point]:
        metrics = list(dict.fromkeys(query.metrics))
        q = self._raw_statement(query)
        device: str | None = None
        buffer: list[tuple[str, int, float]] = []
        for series in self._stream(q):
            name = series.tags.get("device", "")
            if name != device:
                yield from _flush(device, buffer)
                device, buffer = name, []
            index = [(m, series.columns.index(m)) for m in metrics if m in series.columns]
            for row in series.values:
                for metric, i in index:
                    if row[i] is not None:
                        buffer.append((metric, int(row[0]), float(row[i])))
        yield from _flush(device, buffer)

    def scan_frame(self, query: SeriesQuery) -> pd.DataFrame:
        """``scan``'s points as columns; raw points parsed from the answer's value arrays a column at
        a time, no ``Point`` per reading (windowed answers and ``limit`` as ``scan`` gives them)."""
        check_series_query(query)
        check_tags(query.tags)
        if query.window is not None or query.limit is not None or not may_have_points(query):
            return super().scan_frame(query)
        import numpy as np

        from .frames import repeated, scan_frame_of

        metrics = list(dict.fromkeys(query.metrics))
        names = sorted(metrics)  # a device's points go by metric name
        rank = {m: i for i, m in enumerate(names)}
        columns: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # device, ranks, ts, values
        device: str | None = None
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for series in self._stream(self._raw_statement(query)):
            name = series.tags.get("device", "")
            if name != device:
                if device is not None:
                    columns.append((device, *_device_columns(parts)))
                device, parts = name, []
            if not series.values:
                continue
            ts = np.fromiter((row[0] for row in series.values), dtype=np.int64, count=len(series.values))
            table = np.array(series.values, dtype=np.float64)  # null (a metric not sent then): NaN
            for metric in metrics:
                if metric in series.columns:
                    values = table[:, series.columns.index(metric)]
                    keep = ~np.isnan(values)
                    parts.append((np.full(int(keep.sum()), rank[metric]), ts[keep], values[keep]))
        if device is not None:
            columns.append((device, *_device_columns(parts)))
        counts = [len(t) for _, _, t, _ in columns]
        if not columns:
            return scan_frame_of(np.empty(0, np.int64), np.empty(0, object), np.empty(0, object), np.empty(0))
        return scan_frame_of(
            np.concatenate([t for _, _, t, _ in columns]),
            repeated([d for d, _, _, _ in columns], counts),
            np.array(names, dtype=object)[np.concatenate([r for _, r, _, _ in columns])],
            np.concatenate([v for _, _, _, v in columns]),
        )

    def _per_device(
        self,
        source: str,
        metrics: Sequence[str],
        runs: Sequence[Run],
        filters: list[str],
        start_ms: int,
        agg: Aggregation,
        group_by: Sequence[str] = (),
    ) -> list[Row]:
        """One row per device, metric and window, for every aggregation but increase."""
        metrics = list(dict.fromkeys(metrics))
        select = ",".join(
            f"{_INFLUXQL_FUNC[agg].format(m=quote_ident(m))} AS {quote_ident(m)}" for m in metrics
        )
        by = ",".join(['"device"', *(quote_ident(k) for k in group_by if k != "device")])
        statements = [
            f"SELECT {select} FROM {source} WHERE {' AND '.join(_in_run(r, start_ms) + filters)} "
            f"GROUP BY {_by_time(r)}, {by} fill(none)"
            for r in runs
        ]
        rows: dict[tuple[str, str, int, tuple[str, ...]], float] = {}
        for s in self._select(";".join(statements)):
            device = s.tags.get("device", "")
            group = tuple(device if g == "device" else s.tags.get(g, "") for g in group_by)
            for metric in metrics:
                if metric not in s.columns:
                    continue
                i = s.columns.index(metric)
                for row in s.values:
                    value = row[i]
                    # count() answers 0 for a metric absent from a window that other metrics fill
                    if value is None or (agg is Aggregation.COUNT and value == 0):
                        continue
                    key = (device, metric, int(row[0]), group)
                    # a device whose tags changed has two series: combine them as one device
                    rows[key] = _merge(agg, rows.get(key), float(value))
        return [(d, m, w, v, g) for (d, m, w, g), v in rows.items()]

    def _increase(
        self,
        source: str,
        metrics: Sequence[str],
        runs: Sequence[Run],
        filters: list[str],
        start_ms: int,
        lookback_ms: int,
        group_by: Sequence[str],
    ) -> list[Row]:
        """Each device's counter increase per window (see the module docstring).

        Inside a window the steps telescope: the sum of ``value - previous`` over its readings is
        ``last - previous``, so only the resets need their own term (the value before the drop,
        ``value - difference``, which the reset's step skips). Per run: ``first`` and ``last`` per
        window, and the readings where ``difference < 0``; ``last()`` before the range.
        """
        by = ",".join(['"device"', *(quote_ident(k) for k in group_by if k != "device")])
        statements: list[str] = []
        roles: list[tuple[str, int, str]] = []
        for k, run in enumerate(runs):
            when = " AND ".join(_in_run(run, start_ms))
            where = " AND ".join([when, *filters])
            for m in dict.fromkeys(metrics):
                qm = quote_ident(m)
                statements += [
                    f"SELECT first({qm}) AS f, last({qm}) AS l FROM {source} WHERE {where} "
                    f"GROUP BY {_by_time(run)}, {by} fill(none)",
                    f"SELECT d FROM (SELECT difference({qm}) AS d FROM {source} WHERE {where} GROUP BY {by}) "
                    f"WHERE {when} AND d < 0 GROUP BY {by}",
                ]
                roles += [("ends", k, m), ("resets", k, m)]
        if lookback_ms > 0:
            where = " AND ".join(time_range(start_ms - lookback_ms, start_ms) + filters)
            for m in dict.fromkeys(metrics):
                statements.append(
                    f"SELECT last({quote_ident(m)}) AS l FROM {source} WHERE {where} GROUP BY {by}"
                )
                roles.append(("before", -1, m))
        ends: dict[Key, dict[int, tuple[int, float, float]]] = defaultdict(dict)
        before: dict[Key, float] = {}
        resets: list[tuple[Key, int, int, float]] = []  # key, run, time, difference
        for s in self._select(";".join(statements)):
            role, k, metric = roles[s.statement]
            device = s.tags.get("device", "")
            key = (device, metric, tuple(device if g == "device" else s.tags.get(g, "") for g in group_by))
            for row in s.values:
                if row[1] is None:
                    continue
                if role == "ends":
                    ends[key][int(row[0])] = (k, float(row[1]), float(row[2]))
                elif role == "resets":
                    resets.append((key, k, int(row[0]), float(row[1])))
                else:
                    before[key] = float(row[1])
        dropped: dict[tuple[Key, int], float] = defaultdict(float)  # values just before each drop
        values = self._values_at(source, [(key[0], key[1], ts) for key, _, ts, _ in resets])
        for (key, k, ts, difference), value in zip(resets, values, strict=True):
            if value is not None:
                dropped[(key, runs[k].window_of(ts))] += value - difference
        out: list[Row] = []
        for key, windows in ends.items():
            previous = before.get(key)
            last_run = -1
            for window in sorted(windows):
                k, first, last = windows[window]
                value = counter_step(previous, first) + (last - first) + dropped.get((key, window), 0.0)
                if k == last_run and previous is not None and first < previous:
                    value -= previous  # a drop at the window's first reading: its step already counts it
                last_run, previous = k, last
                out.append((key[0], key[1], window, value, key[2]))
        return out

    def _values_at(self, source: str, points: Sequence[tuple[str, str, int]]) -> list[float | None]:
        """The stored value of each (device, metric, time)."""
        found: list[float | None] = []
        for chunk in range(0, len(points), RESET_STATEMENTS):
            part = points[chunk : chunk + RESET_STATEMENTS]
            statements = [
                f'SELECT {quote_ident(m)} FROM {source} WHERE "device" = {quote_string(d)} '
                f"AND time >= {t}ms AND time <= {t}ms"
                for d, m, t in part
            ]
            values: dict[int, float] = {}
            for s in self._select(";".join(statements)):
                for row in s.values:
                    if row[1] is not None:
                        values.setdefault(s.statement, float(row[1]))
            found += [values.get(i) for i in range(len(part))]
        return found

    def aggregate(self, query: GroupQuery) -> list[GroupPoint]:
        """Per-device window values (one row per device and window) combined per group here.

        InfluxDB 1.x could combine them itself in a subquery, but measured several times slower
        than sending the per-device rows (a month of 330 meters' daily means: 9 s against 1 s).
        """
        check_tags(query.tags, query.group_by)
        if query.limit is not None and query.limit < 1:
            raise ValueError("limit must be at least 1")
        if not query.metrics or query.end_ms <= query.start_ms:
            return []
        runs = runs_of(query.start_ms, query.end_ms, query.window, query.tz)
        filters = tag_filter(query.compound, query.devices, query.tags)
        source = self._from_kinds(query.kind)
        if query.aggregation is Aggregation.INCREASE:
            rows = self._increase(
                source, query.metrics, runs, filters, query.start_ms, query.lookback_ms, query.group_by
            )
        else:
            rows = self._per_device(
                source, query.metrics, runs, filters, query.start_ms, query.aggregation, query.group_by
            )
        return combine_groups(((g, m, w, v) for _, m, w, v, g in rows), query.combiner, query.limit)

    # -- devices -----------------------------------------------------------------------------------

    def _field_keys(self, kind: DeviceKind | None) -> dict[str, list[str]]:
        """Metric fields of each kind's measurement."""
        out: dict[str, list[str]] = {}
        for s in self._select(f"SHOW FIELD KEYS FROM {self._from_kinds(kind)}"):
            out.setdefault(s.name, []).extend(row[0] for row in s.values if row[0] != "flagged")
        return out

    def latest(
        self, *, compound: str | None = None, devices: Sequence[str] = (), kind: DeviceKind | None = None
    ) -> list[Latest]:
        """Last value of each metric, the last-seen time (newest reading) and tags per device."""
        statements = [
            (meas, metric) for meas, metrics in sorted(self._field_keys(kind).items()) for metric in metrics
        ]
        if not statements:
            return []
        where = tag_filter(compound, devices)
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        q = ";".join(
            f"SELECT last({quote_ident(m)}) FROM {self._from(meas)}{cond} GROUP BY *"
            for meas, m in statements
        )
        found: dict[str, dict[str, Any]] = {}
        for s in self._select(q):
            measurement, metric = statements[s.statement]
            device = s.tags.get("device", "")
            for ts, value in s.values:
                if value is None:
                    continue
                entry = found.setdefault(
                    device, {"device": device, "kind": DeviceKind(measurement), "compound": "",
                             "last_seen_ms": -1, "values": {}, "tags": {}, "_ts": {}},
                )  # fmt: skip
                if int(ts) >= entry["_ts"].get(metric, -1):
                    entry["values"][metric] = float(value)
                    entry["_ts"][metric] = int(ts)
                if int(ts) >= entry["last_seen_ms"]:
                    entry["last_seen_ms"] = int(ts)
                    entry["compound"] = s.tags.get("compound", "")
                    entry["tags"] = extra_tags(s.tags)
        out = []
        for device in sorted(found):
            entry = found[device]
            entry.pop("_ts")
            entry["values"] = dict(sorted(entry["values"].items()))
            out.append(Latest(**entry))
        return out

    def devices(
        self,
        *,
        kind: DeviceKind | None = None,
        compound: str | None = None,
        devices: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
    ) -> list[DeviceRef]:
        """Devices with stored readings (InfluxDB's series index), ordered by device."""
        check_tags(tags or {})
        where = tag_filter(compound, devices, tags)
        q = f"SHOW SERIES FROM {self._from_kinds(kind)}" + (f" WHERE {' AND '.join(where)}" if where else "")
        found: dict[str, tuple[str, DeviceRef]] = {}  # device -> (series key, ref)
        kinds = {k.value for k in DeviceKind}
        for s in self._select(q):
            for (key,) in s.values:
                measurement, series_tags = parse_series_key(key)
                device = series_tags.get("device")
                if not device or measurement not in kinds:
                    continue
                # a device whose tags changed has several series: one rule picks the same one always
                if device not in found or key > found[device][0]:
                    ref = DeviceRef(
                        device,
                        DeviceKind(measurement),
                        series_tags.get("compound", ""),
                        extra_tags(series_tags),
                    )
                    found[device] = (key, ref)
        return [found[d][1] for d in sorted(found)]

    def _counts(self, compound: str | None, kind: DeviceKind | None, group: str) -> list[Series]:
        where = tag_filter(compound, ())
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        return self._select(f"SELECT count(*) FROM {self._from_kinds(kind)}{cond}{group}")

    def series(self, *, compound: str | None = None, kind: DeviceKind | None = None) -> list[SeriesKey]:
        """Stored series, ordered by device then metric."""
        keys: set[SeriesKey] = set()
        for s in self._counts(compound, kind, ' GROUP BY "device","compound"'):
            for row in s.values:
                for column, value in zip(s.columns, row, strict=True):
                    if column.startswith("count_") and column != "count_flagged" and value:
                        keys.add(
                            SeriesKey(s.tags.get("compound", ""), s.tags.get("device", ""),
                                      DeviceKind(s.name), column.removeprefix("count_"))
                        )  # fmt: skip
        return sorted(keys, key=lambda k: (k.device, k.metric, k.compound))

    def count_readings(self, *, compound: str | None = None) -> int:
        """Number of stored readings (metric values)."""
        total = 0
        for s in self._counts(compound, None, ""):
            for row in s.values:
                for column, value in zip(s.columns, row, strict=True):
                    if column.startswith("count_") and column != "count_flagged" and value:
                        total += int(value)
        return total


def _merge(agg: Aggregation, old: float | None, new: float) -> float:
    """Two series' values of one device and window (its tags changed): the same aggregation."""
    if old is None:
        return new
    if agg is Aggregation.MIN:
        return min(old, new)
    if agg is Aggregation.MAX:
        return max(old, new)
    if agg is Aggregation.COUNT:
        return old + new
    return new  # mean, last, last_minus_first: the newer series wins (rare: a device moved)


def _flush(device: str | None, buffer: list[tuple[str, int, float]]) -> Iterator[Point]:
    """A device's raw points ordered by metric and time; a point in two series (tags changed) once."""
    if device is None:
        return
    buffer.sort(key=lambda p: (p[0], p[1]))
    previous = None
    for metric, ts, value in buffer:
        if (metric, ts) != previous:
            yield Point(device, metric, ts, value)
            previous = (metric, ts)


def _device_columns(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A device's (metric rank, ts, value) columns ordered by metric and time, a point in two series
    (tags changed) once: the first sent, as ``_flush`` keeps it."""
    import numpy as np

    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    ranks = np.concatenate([r for r, _, _ in parts])
    ts = np.concatenate([t for _, t, _ in parts])
    values = np.concatenate([v for _, _, v in parts])
    order = np.lexsort((ts, ranks))  # stable: of equal keys, the first sent comes first
    ranks, ts, values = ranks[order], ts[order], values[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = (ranks[1:] != ranks[:-1]) | (ts[1:] != ts[:-1])
    return ranks[keep], ts[keep], values[keep]
