"""InfluxStore's events: filtered and streamed in time order, the newest per device and name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from ..contract import DeviceKind, Event
from .base import EventQuery, StoredEvent, check_tags
from .derived import DerivedQueries, limited, names_filter
from .influxql import EVENTS_MEASUREMENT, Series, extra_tags, quote_string, tag_filter, time_range


class InfluxEvents(DerivedQueries):
    """Event methods of ``InfluxStore`` (which provides ``_select``, ``_stream`` and ``_from``)."""

    def _select(self, q: str) -> list[Series]:  # pragma: no cover - the store's
        raise NotImplementedError

    def _stream(self, q: str) -> Iterator[Series]:  # pragma: no cover - the store's
        raise NotImplementedError

    def _from(self, measurement: str) -> str:  # pragma: no cover - the store's
        raise NotImplementedError

    def _event_where(self, query: EventQuery) -> list[str] | None:
        names = names_filter(query)
        if (names is not None and not names) or query.end_ms <= query.start_ms:
            return None
        check_tags(query.tags)
        where = time_range(query.start_ms, query.end_ms) + tag_filter(
            query.compound, query.devices, query.tags, query.kind
        )
        if names is not None:
            where.append("(" + " OR ".join(f'"event" = {quote_string(n)}' for n in names) + ")")
        if query.active is not None:
            where.append(f'"active" = {"true" if query.active else "false"}')
        return where

    def scan_events(self, query: EventQuery) -> Iterator[StoredEvent]:
        """Events in a time range, ordered by time, device, then event name, as they arrive."""
        where = self._event_where(query)
        if where is None:
            return iter(())
        q = f"SELECT * FROM {self._from(EVENTS_MEASUREMENT)} WHERE {' AND '.join(where)}"
        return limited(_by_time_then_device(self._event_rows(self._stream(q))), query.limit)

    def _event_rows(self, answer: Iterable[Series]) -> Iterator[StoredEvent]:
        for s in answer:
            for row in s.values:
                yield _event_of(dict(zip(s.columns, row, strict=True)))

    def latest_events(self, query: EventQuery) -> list[StoredEvent]:
        """The newest event of each device and event name in the range, ordered by device, name."""
        where = self._event_where(query)
        if where is None:
            return []
        cond = " AND ".join(where)
        source = self._from(EVENTS_MEASUREMENT)
        q = (
            f"SELECT last(attrs) AS attrs FROM {source} WHERE {cond} GROUP BY *;"
            f"SELECT last(active) AS active FROM {source} WHERE {cond} GROUP BY *"
        )
        newest: dict[tuple[str, str], tuple[int, dict[str, str], str]] = {}
        active: dict[tuple[tuple[str, str], ...], tuple[int, bool]] = {}
        for s in self._select(q):
            for ts, value in s.values:
                if s.statement == 1:
                    active[tuple(sorted(s.tags.items()))] = (int(ts), bool(value))
                    continue
                key = (s.tags.get("device", ""), s.tags.get("event", ""))
                if key not in newest or int(ts) > newest[key][0]:
                    newest[key] = (int(ts), s.tags, value)
        out = []
        for key in sorted(newest):
            ts, tags, attrs = newest[key]
            state = active.get(tuple(sorted(tags.items())))
            out.append(_event_of({**tags, "time": ts, "attrs": attrs,
                                  "active": state[1] if state and state[0] == ts else None}))  # fmt: skip
        return out if query.limit is None else out[: query.limit]


def _event_of(r: Mapping[str, Any]) -> StoredEvent:
    active = r.get("active")
    return StoredEvent(
        Event(device=r["device"], kind=DeviceKind(r["kind"]), ts_ms=int(r["time"]), name=r["event"],
              active=None if active is None else bool(active), attrs=orjson.loads(r.get("attrs") or "{}")),
        compound=r["compound"],
        tags=extra_tags(r),
    )  # fmt: skip


def _by_time_then_device(events: Iterator[StoredEvent]) -> Iterator[StoredEvent]:
    """Events (in time order) with those of one time ordered by device and name."""
    same: list[StoredEvent] = []
    for item in events:
        if same and item.event.ts_ms != same[0].event.ts_ms:
            yield from sorted(same, key=lambda e: (e.event.device, e.event.name))
            same = []
        same.append(item)
    yield from sorted(same, key=lambda e: (e.event.device, e.event.name))
