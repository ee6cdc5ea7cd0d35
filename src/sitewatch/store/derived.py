"""What both stores compute the same way from what each reads natively.

A backend reads points, per-device window values and events in its own language (SQL, InfluxQL);
the steps that follow are here, once: combining devices into groups, the counter step rule of
``increase``, the time a stateful event was active per window, a gateway's liveness.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from ..contract import DeviceKind, Severity
from .base import (
    ActiveQuery,
    ActiveTime,
    Combine,
    DeviceRef,
    EventQuery,
    GatewayStatus,
    GroupPoint,
    Latest,
    Point,
    SeriesQuery,
    StoredEvent,
    event_names,
)
from .checks import MAX_TS_MS
from .windows import Run, Window, plan, windows

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

#: event names under which gateway liveness is stored (on the gateway's own device, kind gateway)
GATEWAY_ONLINE, GATEWAY_OFFLINE = "online", "offline"
#: attribute of those events holding the gateway's boot sequence number
BDSEQ_ATTR = "bdseq"


def counter_step(previous: float | None, value: float) -> float:
    """A counter's increase from ``previous`` to ``value``: a drop means it restarted from zero."""
    if previous is None:
        return 0.0
    return value - previous if value >= previous else value


def runs_of(start_ms: int, end_ms: int, window: Window | None, tz: str) -> list[Run]:
    """The runs of windows of a query; without a window, the whole range as one window."""
    if end_ms <= start_ms:
        return []
    if window is not None:
        return plan(start_ms, end_ms, window, tz)
    return [Run(start_ms, end_ms, end_ms - start_ms)]


def combine_groups(
    rows: Iterable[tuple[tuple[str, ...], str, int, float]], how: Combine, limit: int | None = None
) -> list[GroupPoint]:
    """One GroupPoint per (group, metric, window) from per-device values, ordered by those keys."""
    values: dict[tuple[tuple[str, ...], str, int], list[float]] = defaultdict(list)
    for group, metric, ts, value in rows:
        values[(group, metric, ts)].append(value)
    out = []
    for (group, metric, ts), found in sorted(values.items()):
        out.append(GroupPoint(group, metric, ts, combined(found, how), len(found)))
        if limit is not None and len(out) >= limit:
            break
    return out


def combined(values: Sequence[float], how: Combine) -> float:
    """``values`` combined as ``how`` says."""
    if how is Combine.SUM:
        return math.fsum(values)
    if how is Combine.MEAN:
        return math.fsum(values) / len(values)
    if how is Combine.MIN:
        return min(values)
    if how is Combine.MAX:
        return max(values)
    return float(len(values))


def limited(items: Iterator[T], limit: int | None) -> Iterator[T]:
    """At most ``limit`` of ``items``; stopping early closes ``items`` (and the answer it reads)."""
    try:
        for count, item in enumerate(items, 1):
            yield item
            if limit is not None and count >= limit:
                return
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def check_series_query(query: SeriesQuery) -> None:
    """ValueError for a query no backend can answer."""
    if query.limit is not None and query.limit < 1:
        raise ValueError("limit must be at least 1")
    if query.lookback_ms < 0:
        raise ValueError("lookback_ms must not be negative")


def may_have_points(query: SeriesQuery) -> bool:
    """True when ``query`` can have points: some metric and a range that is not empty."""
    return bool(query.metrics) and query.end_ms > query.start_ms


class DerivedQueries:
    """Store methods computed from a backend's primitives, identical on every backend."""

    def scan(self, query: SeriesQuery) -> Iterator[Point]:  # pragma: no cover - backends implement
        """Points of a query (the backend's own)."""
        raise NotImplementedError

    def scan_frame(self, query: SeriesQuery) -> pd.DataFrame:
        """The points of ``scan(query)`` as columns (``Store.scan_frame``), built from ``scan``."""
        from .frames import scan_columns

        return scan_columns(self.scan(query))

    def scan_events(self, query: EventQuery) -> Iterator[StoredEvent]:  # pragma: no cover
        """Events of a query (the backend's own)."""
        raise NotImplementedError

    def latest_events(self, query: EventQuery) -> list[StoredEvent]:  # pragma: no cover
        """Newest event per device and name (the backend's own)."""
        raise NotImplementedError

    def latest(
        self, *, compound: str | None = None, devices: Sequence[str] = (), kind: DeviceKind | None = None
    ) -> list[Latest]:  # pragma: no cover
        """Latest values per device (the backend's own)."""
        raise NotImplementedError

    def query(self, query: SeriesQuery) -> list[Point]:
        """Points of a time range, ordered by device, metric, time."""
        return list(self.scan(query))

    def events(
        self,
        start_ms: int,
        end_ms: int,
        *,
        compound: str | None = None,
        devices: Sequence[str] = (),
        kind: DeviceKind | None = None,
        names: Sequence[str] = (),
        severities: Sequence[Severity] = (),
        active: bool | None = None,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events in a time range, ordered by time, device, then event name."""
        query = EventQuery(
            start_ms, end_ms, kind=kind, compound=compound, devices=tuple(devices), names=tuple(names),
            severities=tuple(severities), active=active, limit=limit,
        )  # fmt: skip
        return list(self.scan_events(query))

    def active_time(self, query: ActiveQuery) -> list[ActiveTime]:
        """Time each device's stateful event was active, per window; ordered by device, window."""
        if query.end_ms <= query.start_ms:
            return []
        selection = {
            "kind": query.kind, "compound": query.compound, "devices": query.devices, "tags": query.tags,
            "names": (query.event,),
        }  # fmt: skip
        before = self.latest_events(EventQuery(0, query.start_ms, **selection))  # type: ignore[arg-type]
        changes = self.scan_events(EventQuery(query.start_ms, query.end_ms, **selection))  # type: ignore[arg-type]
        return active_time(query, before, changes)

    def gateways(self, *, compound: str | None = None) -> list[GatewayStatus]:
        """The site gateways whose birth or death was stored, ordered by device."""
        states = self.latest_events(
            EventQuery(0, MAX_TS_MS + 1, kind=DeviceKind.GATEWAY, compound=compound,
                       names=(GATEWAY_ONLINE, GATEWAY_OFFLINE))
        )  # fmt: skip
        counters = {x.device: x for x in self.latest(kind=DeviceKind.GATEWAY, compound=compound)}
        return gateway_statuses(states, counters)


def active_time(
    query: ActiveQuery, before: Iterable[StoredEvent], changes: Iterable[StoredEvent]
) -> list[ActiveTime]:
    """Active time per device and window from the state before the range and the changes in it."""
    spans = windows(query.start_ms, query.end_ms, query.window, query.tz)
    refs: dict[str, DeviceRef] = {}
    since: dict[str, int] = {}  # device -> start of its open interval
    intervals: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in before:
        e = item.event
        refs[e.device] = DeviceRef(e.device, e.kind, item.compound, dict(item.tags))
        if e.active:
            since[e.device] = query.start_ms
    for item in changes:
        e = item.event
        if e.active is None:
            continue
        refs[e.device] = DeviceRef(e.device, e.kind, item.compound, dict(item.tags))
        if e.active and e.device not in since:
            since[e.device] = e.ts_ms
        elif not e.active and e.device in since:
            intervals[e.device].append((since.pop(e.device), e.ts_ms))
    for device, start in since.items():
        intervals[device].append((start, query.end_ms))
    out = []
    for device in sorted(intervals):
        for label, end in spans:
            begin = max(label, query.start_ms)
            total = sum(max(0, min(b, end) - max(a, begin)) for a, b in intervals[device])
            if total > 0:
                out.append(ActiveTime(refs[device], query.event, label, total))
    return out


def gateway_statuses(states: Iterable[StoredEvent], counters: Mapping[str, Latest]) -> list[GatewayStatus]:
    """Each gateway's newest liveness event, with its newest counters."""
    newest: dict[str, StoredEvent] = {}
    for item in states:
        current = newest.get(item.event.device)
        if current is None or item.event.ts_ms > current.event.ts_ms:
            newest[item.event.device] = item
    out = []
    for device in sorted(newest):
        item = newest[device]
        try:
            bdseq = int(item.event.attrs.get(BDSEQ_ATTR, "-1"))
        except ValueError:
            bdseq = -1
        latest = counters.get(device)
        out.append(
            GatewayStatus(
                device=device,
                compound=item.compound,
                online=item.event.name == GATEWAY_ONLINE,
                since_ms=item.event.ts_ms,
                bdseq=bdseq,
                counters_ms=latest.last_seen_ms if latest else None,
                counters=dict(latest.values) if latest else {},
            )
        )
    return out


def names_filter(query: EventQuery) -> tuple[str, ...] | None:
    """The event names ``query`` allows (None: any)."""
    return event_names(query.kind, query.names, query.severities)
