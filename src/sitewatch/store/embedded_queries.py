"""The embedded store's reading side: SQL over the ``series``, ``readings`` and ``events`` tables.

Windows come from the shared plan (``windows.plan``): each run of equal windows is one arithmetic
expression, so a window is computed in SQL whatever the time zone or calendar unit. ``increase``
uses SQLite's ``LAG`` window function for each reading's previous one (searched from
``lookback_ms`` before the range). Raw points and events are read a page at a time, so an answer
of any size can be iterated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..contract import DeviceKind, Event
from .base import (
    Aggregation,
    DeviceRef,
    EventQuery,
    GroupPoint,
    GroupQuery,
    Latest,
    Point,
    SeriesKey,
    SeriesQuery,
    StoredEvent,
    check_tags,
)
from .derived import (
    DerivedQueries,
    check_series_query,
    combine_groups,
    limited,
    may_have_points,
    names_filter,
    runs_of,
)
from .windows import Run

if TYPE_CHECKING:
    import pandas as pd

PAGE = 10_000  # rows read under the store's lock at a time

_AGG_SQL = {
    Aggregation.MEAN: "avg(v)",
    Aggregation.MIN: "min(v)",
    Aggregation.MAX: "max(v)",
    Aggregation.COUNT: "count(*)",
    Aggregation.INCREASE: "sum(CASE WHEN prev IS NULL THEN 0.0 WHEN v >= prev THEN v - prev ELSE v END)",
}


# a raw reading as the embedded store's scan_frame reads it
_ROW = [("ts", "<i8"), ("value", "<f8")]


def _in(column: str, values: Sequence[str], params: list[Any]) -> str:
    params.extend(values)
    return f"{column} IN ({','.join('?' * len(values))})"


def tag_sql(key: str, alias: str = "s") -> str:
    """SQL of a tag's value (``''`` when absent) on a ``series`` or ``events`` row."""
    if key in ("device", "kind", "compound"):
        return f"{alias}.{key}"
    return f"coalesce(json_extract({alias}.tags, '$.{key}'), '')"


def selection_sql(
    params: list[Any],
    *,
    kind: DeviceKind | None = None,
    metrics: Sequence[str] = (),
    devices: Sequence[str] = (),
    compound: str | None = None,
    tags: Mapping[str, str] | None = None,
    alias: str = "s",
) -> list[str]:
    """WHERE conditions selecting series (or events) by kind, metric, device, compound and tags."""
    where = []
    if kind is not None:
        where.append(f"{alias}.kind = ?")
        params.append(kind.value)
    if metrics:
        where.append(_in(f"{alias}.metric", list(dict.fromkeys(metrics)), params))
    if devices:
        where.append(_in(f"{alias}.device", list(dict.fromkeys(devices)), params))
    if compound is not None:
        where.append(f"{alias}.compound = ?")
        params.append(compound)
    for key, value in sorted((tags or {}).items()):
        where.append(f"{tag_sql(key, alias)} = ?")
        params.append(value)
    return where


def window_sql(runs: Sequence[Run], column: str = "ts") -> str:
    """SQL giving the start of the window of ``column`` (runs are contiguous and in order)."""
    parts = [
        f"WHEN {column} < {r.end_ms} THEN {r.start_ms} + (({column} - {r.start_ms}) / {r.length_ms}) * {r.length_ms}"
        for r in runs
    ]
    return f"CASE {' '.join(parts)} END"


class EmbeddedQueries(DerivedQueries):
    """Reading methods of ``EmbeddedStore`` (which provides ``_rows``)."""

    def _rows(self, sql: str, params: Iterable[Any]) -> list[Any]:  # pragma: no cover - the store's
        raise NotImplementedError

    # -- points ----------------------------------------------------------------------------------

    def scan(self, query: SeriesQuery) -> Iterator[Point]:
        """Points of a time range, ordered by device, metric, time; raw points a page at a time."""
        check_series_query(query)
        check_tags(query.tags)
        if not query.metrics or query.end_ms <= query.start_ms:
            return iter(())
        if query.window is None:
            return limited(self._raw(query), query.limit)
        rows = self._windowed(
            query.kind, query.metrics, query.devices, query.compound, query.tags, runs_of(
                query.start_ms, query.end_ms, query.window, query.tz), query, ())  # fmt: skip
        return limited((Point(d, m, w, v) for d, m, w, v, _ in rows), query.limit)

    def scan_frame(self, query: SeriesQuery) -> pd.DataFrame:
        """``scan``'s points as columns; raw points read a series at a time into arrays, no
        ``Point`` per reading (windowed answers and ``limit`` as ``scan`` gives them)."""
        check_series_query(query)
        check_tags(query.tags)
        if query.window is not None or query.limit is not None or not may_have_points(query):
            return super().scan_frame(query)
        import numpy as np

        from .frames import repeated, scan_frame_of

        devices: list[str] = []
        metrics: list[str] = []
        pages: list[np.ndarray] = []
        for device, metric, page in self._raw_pages(query):  # a series' pages follow one another
            devices.append(device)
            metrics.append(metric)
            pages.append(np.array(page, dtype=_ROW))
        rows = np.concatenate(pages) if pages else np.empty(0, dtype=_ROW)
        counts = [len(p) for p in pages]
        return scan_frame_of(rows["ts"], repeated(devices, counts), repeated(metrics, counts), rows["value"])

    def _raw(self, query: SeriesQuery) -> Iterator[Point]:
        for device, metric, page in self._raw_pages(query):
            for ts, value in page:
                yield Point(device, metric, int(ts), float(value))

    def _raw_pages(self, query: SeriesQuery) -> Iterator[tuple[str, str, list[tuple[int, float]]]]:
        """(device, metric, rows of (ts, value)) per page of raw points, ordered by device, metric, time."""
        params: list[Any] = []
        where = selection_sql(
            params, kind=query.kind, metrics=query.metrics, devices=query.devices, compound=query.compound,
            tags=query.tags,
        )  # fmt: skip
        series = self._rows(
            f"SELECT s.id, s.device, s.metric FROM series s WHERE {' AND '.join(where)} ORDER BY s.device, s.metric",
            params,
        )
        for sid, device, metric in series:
            after = query.start_ms - 1
            while True:
                page = self._rows(
                    "SELECT ts, value FROM readings WHERE series_id = ? AND ts > ? AND ts < ? ORDER BY ts LIMIT ?",
                    (sid, after, query.end_ms, PAGE),
                )
                if page:
                    yield device, metric, page
                if len(page) < PAGE:
                    break
                after = page[-1][0]

    def _windowed(
        self,
        kind: DeviceKind | None,
        metrics: Sequence[str],
        devices: Sequence[str],
        compound: str | None,
        tags: Mapping[str, str],
        runs: Sequence[Run],
        query: SeriesQuery | GroupQuery,
        group_by: Sequence[str],
    ) -> list[tuple[str, str, int, float, tuple[str, ...]]]:
        """(device, metric, window, value, group) per device, metric and window with readings."""
        if not runs:
            return []
        params: list[Any] = []
        where = selection_sql(
            params, kind=kind, metrics=metrics, devices=devices, compound=compound, tags=tags
        )
        selected = f"SELECT s.id FROM series s WHERE {' AND '.join(where) or '1'}"
        agg = query.aggregation
        increase = agg is Aggregation.INCREASE
        lag = ", LAG(r.value) OVER (PARTITION BY r.series_id ORDER BY r.ts) AS prev" if increase else ""
        first = query.start_ms - (query.lookback_ms if increase else 0)
        points = (
            f"WITH p AS (SELECT r.series_id AS sid, r.ts AS ts, r.value AS v{lag} FROM readings r "
            f"WHERE r.series_id IN ({selected}) AND r.ts >= ? AND r.ts < ?), "
            f"q AS (SELECT *, {window_sql(runs)} AS w FROM p WHERE ts >= ?) "
        )
        params += [first, query.end_ms, query.start_ms]
        if agg in _AGG_SQL:
            body = f"SELECT sid, w, {_AGG_SQL[agg]} AS val FROM q GROUP BY sid, w"
        elif agg is Aggregation.LAST:  # SQLite takes the bare column from the row holding max(ts)
            body = "SELECT sid, w, v AS val, max(ts) FROM q GROUP BY sid, w"
        else:  # LAST_MINUS_FIRST
            body = (
                "SELECT b.sid, b.w, (SELECT value FROM readings WHERE series_id = b.sid AND ts = b.t1) - "
                "(SELECT value FROM readings WHERE series_id = b.sid AND ts = b.t0) AS val "
                "FROM (SELECT sid, w, min(ts) AS t0, max(ts) AS t1 FROM q GROUP BY sid, w) b"
            )
        groups = ", ".join(tag_sql(k) for k in group_by) or "''"
        sql = (
            f"{points}SELECT s.device, s.metric, a.w, a.val, {groups} FROM ({body}) a "
            "JOIN series s ON s.id = a.sid ORDER BY s.device, s.metric, a.w"
        )
        return [
            (d, m, int(w), float(v), tuple(str(g) for g in rest) if group_by else ())
            for d, m, w, v, *rest in self._rows(sql, params)
        ]

    def aggregate(self, query: GroupQuery) -> list[GroupPoint]:
        """Per-device window values (in SQL) combined per group."""
        check_tags(query.tags, query.group_by)
        if query.limit is not None and query.limit < 1:
            raise ValueError("limit must be at least 1")
        if not query.metrics or query.end_ms <= query.start_ms:
            return []
        runs = runs_of(query.start_ms, query.end_ms, query.window, query.tz)
        rows = self._windowed(
            query.kind, query.metrics, query.devices, query.compound, query.tags, runs, query, query.group_by
        )
        return combine_groups(((g, m, w, v) for _, m, w, v, g in rows), query.combiner, query.limit)

    # -- devices -----------------------------------------------------------------------------------

    def latest(
        self, *, compound: str | None = None, devices: Sequence[str] = (), kind: DeviceKind | None = None
    ) -> list[Latest]:
        """Last value of each metric, the last-seen time (newest reading) and tags per device."""
        params: list[Any] = []
        where = selection_sql(params, kind=kind, devices=devices, compound=compound)
        sql = (
            "SELECT s.device, s.kind, s.compound, s.metric, r.ts, r.value, s.tags FROM series s "
            "JOIN readings r ON r.series_id = s.id "
            "AND r.ts = (SELECT max(ts) FROM readings WHERE series_id = s.id) "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY s.device, s.metric"
        )
        out: list[Latest] = []
        current: dict[str, Any] | None = None
        for device, kind_, compound_, metric, ts, value, tags in self._rows(sql, params):
            if current is None or current["device"] != device:
                if current is not None:
                    out.append(Latest(**current))
                current = {"device": device, "kind": DeviceKind(kind_), "compound": compound_,
                           "last_seen_ms": int(ts), "values": {}, "tags": orjson.loads(tags)}  # fmt: skip
            current["values"][metric] = float(value)
            if int(ts) > current["last_seen_ms"]:
                current["last_seen_ms"] = int(ts)
                current["compound"] = compound_
                current["tags"] = orjson.loads(tags)
        if current is not None:
            out.append(Latest(**current))
        return out

    def devices(
        self,
        *,
        kind: DeviceKind | None = None,
        compound: str | None = None,
        devices: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
    ) -> list[DeviceRef]:
        """Devices with stored readings, with their compound and tags, ordered by device."""
        check_tags(tags or {})
        params: list[Any] = []
        where = selection_sql(params, kind=kind, devices=devices, compound=compound, tags=tags)
        sql = (
            "SELECT s.device, s.kind, s.compound, s.tags, max(s.id) FROM series s "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} GROUP BY s.device ORDER BY s.device"
        )
        return [DeviceRef(d, DeviceKind(k), c, orjson.loads(t)) for d, k, c, t, _ in self._rows(sql, params)]

    def series(self, *, compound: str | None = None, kind: DeviceKind | None = None) -> list[SeriesKey]:
        """Stored series, ordered by device then metric."""
        params: list[Any] = []
        where = selection_sql(params, kind=kind, compound=compound)
        where.append("EXISTS (SELECT 1 FROM readings WHERE series_id = s.id)")
        sql = (
            "SELECT s.compound, s.device, s.kind, s.metric FROM series s "
            f"WHERE {' AND '.join(where)} ORDER BY s.device, s.metric"
        )
        return [SeriesKey(c, d, DeviceKind(k), m) for c, d, k, m in self._rows(sql, params)]

    def count_readings(self, *, compound: str | None = None) -> int:
        """Number of stored readings (metric values)."""
        if compound is None:
            return int(self._rows("SELECT count(*) FROM readings", ())[0][0])
        sql = "SELECT count(*) FROM series s JOIN readings r ON r.series_id = s.id WHERE s.compound = ?"
        return int(self._rows(sql, (compound,))[0][0])

    # -- events ------------------------------------------------------------------------------------

    def _event_where(self, query: EventQuery, params: list[Any]) -> list[str] | None:
        names = names_filter(query)
        if names is not None and not names:
            return None
        check_tags(query.tags)
        where = selection_sql(
            params,
            kind=query.kind,
            devices=query.devices,
            compound=query.compound,
            tags=query.tags,
            alias="e",
        )
        if names is not None:
            where.append(_in("e.name", names, params))
        if query.active is not None:
            where.append("e.active = ?")
            params.append(int(query.active))
        return where

    def scan_events(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Events in a time range, ordered by time, device, then event name; a page at a time."""
        params: list[Any] = []
        where = self._event_where(query, params)
        if where is None or query.end_ms <= query.start_ms:
            return iter(())
        return self._event_pages(query, where, params)

    def _event_pages(self, query: EventQuery, where: list[str], params: list[Any]) -> Iterator[StoredEvent]:
        after: tuple[int, str, str] | None = None  # the last (ts, device, name) read: pages follow it
        left = query.limit
        while True:
            size = PAGE if left is None else min(PAGE, left)
            position_params: list[Any]
            if after is None:
                position, position_params = "e.ts >= ?", [query.start_ms]
            else:
                position, position_params = "(e.ts, e.device, e.name) > (?, ?, ?)", list(after)
            page = self._rows(
                "SELECT e.device, e.ts, e.name, e.kind, e.compound, e.active, e.attrs, e.tags FROM events e "
                f"WHERE {' AND '.join([*where, position, 'e.ts < ?'])} ORDER BY e.ts, e.device, e.name LIMIT ?",
                [*params, *position_params, query.end_ms, size],
            )
            for row in page:
                yield _stored_event(row)
            if left is not None:
                left -= len(page)
            if len(page) < size or left == 0:
                return
            last = page[-1]
            after = (int(last[1]), last[0], last[2])

    def latest_events(self, query: EventQuery) -> list[StoredEvent]:
        """The newest event of each device and event name in the range, ordered by device, name."""
        params: list[Any] = []
        where = self._event_where(query, params)
        if where is None or query.end_ms <= query.start_ms:
            return []
        where.append("e.ts >= ? AND e.ts < ?")
        params += [query.start_ms, query.end_ms]
        sql = (
            "SELECT e.device, max(e.ts), e.name, e.kind, e.compound, e.active, e.attrs, e.tags FROM events e "
            f"WHERE {' AND '.join(where)} GROUP BY e.device, e.name ORDER BY e.device, e.name"
        )
        rows = self._rows(sql, params)
        return [_stored_event(row) for row in (rows if query.limit is None else rows[: query.limit])]


def _stored_event(row: Sequence[Any]) -> StoredEvent:
    device, ts, name, kind, compound, active, attrs, tags = row
    return StoredEvent(
        Event(device=device, kind=DeviceKind(kind), ts_ms=int(ts), name=name,
              active=None if active is None else bool(active), attrs=orjson.loads(attrs)),
        compound=compound,
        tags=orjson.loads(tags),
    )  # fmt: skip
